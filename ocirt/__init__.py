"""ocirt: a runc-compatible OCI runtime with a libkrun microVM / TEE handler."""
__version__ = "0.1.0"
OCI_VERSION = "1.2.0"          # the runtime-spec version ocirt reports in state
OCI_VERSION_MIN = "1.0.0"      # oldest config.json ociVersion accepted
OCI_VERSION_MAX = "1.2.1"
