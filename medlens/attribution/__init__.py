"""Attribution methods, one module per family. Importing a module registers its methods."""

from medlens.attribution import gradient  # noqa: F401
