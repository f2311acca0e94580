"""Package catalogers: what is installed in an image, read from its package databases.

The seam is :mod:`.interface`; one module per database format sits beside it, and
:mod:`.catalog` picks them through :class:`~.catalog.CatalogerChoice` and runs them.
"""
