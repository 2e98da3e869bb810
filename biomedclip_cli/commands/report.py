"""`bmclip report`: plots and a one-page summary of a run folder."""
EPILOG = ""
def report() -> None:
    """placeholder"""
