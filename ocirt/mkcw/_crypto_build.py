"""cffi API-mode build of ``ocirt.mkcw._crypto``: the one OpenSSL loop ocirt-mkcw needs in C.

Compiled once at install time (setup.py ``cffi_modules``), linked against the
system's libcrypto.  The function only calls OpenSSL primitives; what it adds
is the loop over sectors, which Python cannot run fast enough:

``xts_plain64``
    AES-XTS over whole 512-byte sectors with dm-crypt's ``plain64`` IV (the
    sector number, little-endian, zero-padded to 16 bytes): OpenSSL's own XTS,
    one ``EVP_CipherUpdate`` per sector with the IV reset in between, which is
    what dm-crypt does with ``aes-xts-plain64``.  It encrypts the LUKS payload
    only; the LUKS header and key slot are written by cryptsetup.

cffi releases the GIL around the call, so the layer is hashed and written by
another thread while a chunk is encrypted.
"""
from cffi import FFI

ffibuilder = FFI()

ffibuilder.cdef(r"""
int xts_plain64(const unsigned char *key, size_t key_len, const unsigned char *in, unsigned char *out,
                size_t len, unsigned long long first_sector, int encrypt);
""")

ffibuilder.set_source("ocirt.mkcw._crypto", r"""
#include <string.h>
#include <openssl/evp.h>

static int xts_plain64(const unsigned char *key, size_t key_len, const unsigned char *in, unsigned char *out,
                       size_t len, unsigned long long first_sector, int encrypt)
{
    EVP_CIPHER_CTX *ctx;
    unsigned char iv[16];
    size_t off;
    int outl, ok = 1, i;

    if (key_len != 64 || len % 512)
        return -1;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return -1;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_xts(), NULL, key, NULL, encrypt ? 1 : 0) != 1)
        ok = 0;
    memset(iv, 0, sizeof iv);
    for (off = 0; ok && off < len; off += 512) {
        unsigned long long sector = first_sector + off / 512;
        for (i = 0; i < 8; i++)
            iv[i] = (unsigned char)(sector >> (8 * i));
        if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1) != 1
                || EVP_CipherUpdate(ctx, out + off, &outl, in + off, 512) != 1 || outl != 512)
            ok = 0;
    }
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}
""", libraries=["crypto"])

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
