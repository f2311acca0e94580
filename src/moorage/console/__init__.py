"""The web console, the supply-chain map and compliance views."""
