"""Handlers: what replaces the final ``execve`` of a container's init.

Only selection lives here: this module is imported on every ``create``, so it
imports nothing beyond ``os`` and the error types.  The krun handler module
(and cffi with it) is imported only when a container actually asks for it.

Selection follows crun's krun handler (reference: libkrun-and-krun-handler.md
§4.1, §4.4) with two additions of ours, the ``krun-sev`` and ``krun-tdx``
handler names:

* ``run.oci.handler`` = ``krun`` | ``krun-sev`` | ``krun-tdx`` selects the handler;
* ocirt started under the program name ``krun`` or ``krun-ocirt`` (a
  symlink) selects krun for every container, like crun;
* a Kubernetes sandbox (``io.kubernetes.cri.container-type=sandbox``) never
  gets a handler: the pause container must stay a plain process;
* once krun is selected, the TEE variant comes from the handler name, the
  ``krun.variant`` annotation, or a ``/krun-sev.json`` in the rootfs (a
  confidential-workload image; its ``"tee"`` field says SEV/SNP or TDX).

A confidential-workload image run *without* asking for krun gets no handler
(it then runs its stub ``/entrypoint``, which says it needs libkrun); the
``hooks/krun-cw-guard`` hook refuses such a start with a better message.
"""
import os

from ocirt.errors import ConfigError, OcirtError

HANDLER_ANNOTATION = "run.oci.handler"
VARIANT_ANNOTATION = "krun.variant"
SANDBOX_ANNOTATION = "io.kubernetes.cri.container-type"
TEE_CONFIG_NAME = "krun-sev.json"   # same name for SEV, SNP and TDX (confidential-workloads.md §3)

# Started under one of these names (symlinks to ocirt), ocirt applies krun to every
# container, like crun's "krun"; scripts/install-deps.sh installs "krun-ocirt" so
# as not to take crun's name.
KRUN_PROGRAM_NAMES = ("krun", "krun-ocirt")

# handler name -> TEE variant (None: plain microVM)
HANDLER_VARIANTS = {"krun": None, "krun-sev": "sev", "krun-tdx": "tdx"}
VARIANT_NAMES = {"sev": "krun-sev", "tdx": "krun-tdx"}


def select(config, rootfs, prog_name):
    """The handler for this container, or None for a plain ``execve``."""
    annotations = config.get("annotations") or {}
    if annotations.get(SANDBOX_ANNOTATION) == "sandbox":
        return None
    requested = annotations.get(HANDLER_ANNOTATION)
    if requested is not None and requested not in HANDLER_VARIANTS:
        raise ConfigError(f"config.json: annotations.{HANDLER_ANNOTATION}: unknown handler {requested!r} "
                          f"(ocirt knows {', '.join(HANDLER_VARIANTS)})")
    if requested is None and os.path.basename(prog_name or "") not in KRUN_PROGRAM_NAMES:
        return None
    variant = _variant(annotations, requested or "krun", rootfs)
    from ocirt.handlers.krun import KrunHandler
    return KrunHandler(variant)


def _variant(annotations, handler_name, rootfs):
    by_name = HANDLER_VARIANTS[handler_name]
    by_annotation = annotations.get(VARIANT_ANNOTATION)
    if by_annotation is not None:
        if by_annotation not in VARIANT_NAMES:
            raise ConfigError(f"config.json: annotations.{VARIANT_ANNOTATION}: unsupported variant {by_annotation!r} "
                              "(ocirt supports sev, tdx; aws-nitro is not supported)")
        if by_name is not None and by_name != by_annotation:
            raise ConfigError(f"config.json: annotations.{VARIANT_ANNOTATION}={by_annotation} contradicts "
                              f"{HANDLER_ANNOTATION}={handler_name}")
        return by_annotation
    if by_name is not None:
        return by_name
    if os.path.lexists(os.path.join(rootfs, TEE_CONFIG_NAME)):
        # The file's "tee" field is validated by check(); here it only picks
        # the library.  An unreadable file means SEV, and check() says why.
        from ocirt.handlers.krun import read_tee_config
        try:
            return "tdx" if read_tee_config(rootfs).get("tee") == "tdx" else "sev"
        except OcirtError:
            return "sev"
    return None


def exec_refusal(handler_name):
    """The one line ``ocirt exec`` prints for a container run by ``handler_name``."""
    return (f"exec is not supported for {handler_name} containers: the workload runs inside a libkrun microVM "
            "whose guest has no agent to start another process; run the command as the container's own "
            "process instead")


def features():
    """Annotations for ``ocirt features``: handler names and libkrun variants found.

    ``run.oci.ocirt.handlers``: every handler name ocirt accepts;
    ``run.oci.ocirt.libkrun.variants``: the handler names whose library
    (libkrun.so.1, libkrun-sev.so.1, libkrun-tdx.so.1) loads on this host.
    """
    from ocirt.handlers.krun import available_variants
    return {
        "run.oci.ocirt.handlers": ",".join(HANDLER_VARIANTS),
        "run.oci.ocirt.libkrun.variants": ",".join(available_variants()),
    }
