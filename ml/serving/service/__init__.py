"""The HTTP scoring service (``ctr-pipeline serve``); the module map is in :mod:`.app`."""
