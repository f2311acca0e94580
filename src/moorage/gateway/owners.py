"""The image owner store moved to admission (``moorage.admission.owners``); this name
stays for callers of the old place."""

from moorage.admission.owners import ImageOwners

__all__ = ["ImageOwners"]
