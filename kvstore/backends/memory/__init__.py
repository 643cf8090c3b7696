"""The ``memory`` backend: the contract's reference implementation, dicts in the process."""
