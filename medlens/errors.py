"""User-facing errors.

Every problem a user can cause (a bad file, a wrong shape, an unknown method, a target out of
range) raises a subclass of :class:`MedlensError` whose message names the problem in one line.
The CLI turns these into ``medlens: error: <message>`` and exit code 2, without a traceback.
"""


class MedlensError(ValueError):
    """Base class of every error caused by the user's input."""


class InputError(MedlensError):
    """An input tensor or array is unusable: wrong shape, NaN/inf, wrong dtype."""


class TargetError(MedlensError):
    """A target is out of range or does not match the batch."""


class UnknownNameError(MedlensError):
    """A method, metric, layer or data set name is not known."""


class FileFormatError(MedlensError):
    """A file is missing, corrupt or not of the expected format."""
