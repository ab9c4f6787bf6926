"""``ad.backends.mps``: Apple's Metal backend, which ad does not have."""


def is_available():
    """False: ad has no MPS backend."""
    return False


def is_built():
    """False: ad has no MPS backend."""
    return False
