"""The package as shipped: the wheel, the desktop bundle, and the import layers."""
