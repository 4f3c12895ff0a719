"""One registry type for every kind of named, pluggable thing in medlens.

Attribution methods, evaluation metrics, model architectures, feature-visualisation
parameterisations and model-free baseline maps are each one :class:`Registry` instance, owned
by the package that defines the things it holds. A registry maps a name to an entry (a function,
a class or a metadata record); unknown names raise :class:`~medlens.errors.UnknownNameError`
listing what is available.

A registry may be given a ``load`` callable that imports the modules whose import registers the
built-in entries; it runs once, the first time the registry is read, so that registering stays a
side effect of defining the thing (a decorator) without import cycles.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from medlens.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry, with one error message and one duplicate rule for all kinds.

    Parameters
    ----------
    kind : str
        What the entries are, in the singular ("method", "metric"): used in error messages.
    load : callable, optional
        Imports the modules that register the built-in entries; called once on first read.
    """

    def __init__(self, kind: str, load: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._load = load
        self._loaded = load is None

    def add(self, name: str, entry: T, *, same: Callable[[T, T], bool] | None = None) -> T:
        """Register ``entry`` under ``name``.

        Registering the same name twice is an error unless ``same(old, new)`` says the two
        are one thing (a module imported twice re-registers the same function).
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        old = self._entries.get(name)
        if old is not None and old is not entry and not (same is not None and same(old, entry)):
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def decorator(self, name: str, wrap: Callable[[T], T] | None = None,
                  same: Callable[[T, T], bool] | None = None) -> Callable[[T], T]:
        """A decorator that registers what it decorates (or ``wrap(it)``) and returns it unchanged."""

        def decorate(thing):
            self.add(name, wrap(thing) if wrap is not None else thing, same=same)
            return thing

        return decorate

    def remove(self, name: str) -> None:
        """Unregister ``name`` (a plugin or a test's temporary entry); no error if absent."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        """The entry registered under ``name``.

        Raises
        ------
        UnknownNameError
            ``name`` is not registered; the message lists the registered names.
        """
        self._ensure_loaded()
        if name not in self._entries:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; available {self.kind}s: {', '.join(self._entries) or 'none'}"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        self._ensure_loaded()
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        self._ensure_loaded()
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True  # set first: the loader's imports read the registry too
            assert self._load is not None
            self._load()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"
