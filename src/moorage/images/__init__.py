"""Image sources, package inventory, SBOM, vulnerability matching and signatures."""
