"""The HTTP coordinator: admission, job splitting, job store, event relay."""
