"""Version 1 of the contract: protos and the modules generated from them, side by side."""
