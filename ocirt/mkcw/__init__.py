"""ocirt-mkcw: turn an OCI image into a confidential workload image.

The output follows the ``buildah mkcw`` format (confidential-workloads.md):
one layer holding ``/entrypoint`` (a refusing stub), ``/krun-sev.json``,
``/tmp`` and ``/disk.img`` -- the source image's files in a LUKS-encrypted
ext4 disk followed by a ``KRUN`` footer.  ``convert.convert()`` is the whole
pipeline; ``cli.main()`` is the command.
"""
