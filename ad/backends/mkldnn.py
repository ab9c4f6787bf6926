"""``ad.backends.mkldnn``: oneDNN, which ad does not use (``enabled`` is a settable switch that changes
nothing)."""

enabled = True


def is_available():
    """False: ad does not use oneDNN."""
    return False
