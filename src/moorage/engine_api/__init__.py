"""The Docker Engine API as data: endpoint table, version prefixes, typed body views. No I/O."""
