"""The store's two expected conditions, for callers to tell apart from bugs."""


class StoreMissing(FileNotFoundError):
    """The object (or published directory) is not in the store."""


class StorageUnavailable(Exception):
    """The object store could not be reached or did not answer in time; retry later."""
