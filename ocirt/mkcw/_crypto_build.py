"""cffi API-mode build of ``ocirt.mkcw._crypto``: two OpenSSL loops ocirt-mkcw needs in C.

Compiled once at install time (setup.py ``cffi_modules``), linked against the
system's libcrypto.  Both functions only call OpenSSL primitives; what they
add is the loop, which Python cannot run fast enough:

``pbkdf2_sha256_block``
    one 32-byte block T_i of PBKDF2-HMAC-SHA256 (RFC 8018 §5.2).  A 64-byte
    LUKS key slot key is two independent blocks, so the caller derives them on
    two cores at once; OpenSSL's ``PKCS5_PBKDF2_HMAC`` always starts at block
    1 and computes the blocks one after the other.  HMAC is the RFC 2104
    construction over OpenSSL's SHA-256 with the ipad/opad states computed once.

``xts_plain64``
    AES-XTS over whole 512-byte sectors with dm-crypt's ``plain64`` IV (the
    sector number, little-endian, zero-padded to 16 bytes): OpenSSL's own XTS,
    one ``EVP_CipherUpdate`` per sector with the IV reset in between, which is
    what dm-crypt does with ``aes-xts-plain64``.

cffi releases the GIL around both calls, so Python threads run them in parallel.
"""
from cffi import FFI

ffibuilder = FFI()

ffibuilder.cdef(r"""
int pbkdf2_sha256_block(const unsigned char *password, size_t password_len,
                        const unsigned char *salt, size_t salt_len,
                        unsigned long iterations, unsigned int index, unsigned char *out);
int xts_plain64(const unsigned char *key, size_t key_len, const unsigned char *in, unsigned char *out,
                size_t len, unsigned long long first_sector, int encrypt);
""")

ffibuilder.set_source("ocirt.mkcw._crypto", r"""
#define OPENSSL_SUPPRESS_DEPRECATED 1      /* SHA256_Init & co.: still the fastest path in OpenSSL 3 */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

static int pbkdf2_sha256_block(const unsigned char *password, size_t password_len,
                               const unsigned char *salt, size_t salt_len,
                               unsigned long iterations, unsigned int index, unsigned char *out)
{
    unsigned char key[SHA256_CBLOCK], pad[SHA256_CBLOCK], u[SHA256_DIGEST_LENGTH], be[4];
    SHA256_CTX inner, outer, c;
    unsigned long j;
    size_t i;

    if (iterations < 1 || index < 1)
        return -1;
    memset(key, 0, sizeof key);
    if (password_len > SHA256_CBLOCK)
        SHA256(password, password_len, key);
    else
        memcpy(key, password, password_len);
    for (i = 0; i < SHA256_CBLOCK; i++)
        pad[i] = key[i] ^ 0x36;
    SHA256_Init(&inner);
    SHA256_Update(&inner, pad, SHA256_CBLOCK);
    for (i = 0; i < SHA256_CBLOCK; i++)
        pad[i] = key[i] ^ 0x5c;
    SHA256_Init(&outer);
    SHA256_Update(&outer, pad, SHA256_CBLOCK);

    /* U_1 = HMAC(P, S || INT_32_BE(i)) */
    be[0] = index >> 24; be[1] = index >> 16; be[2] = index >> 8; be[3] = index;
    c = inner;
    SHA256_Update(&c, salt, salt_len);
    SHA256_Update(&c, be, 4);
    SHA256_Final(u, &c);
    c = outer;
    SHA256_Update(&c, u, sizeof u);
    SHA256_Final(u, &c);
    memcpy(out, u, sizeof u);
    /* U_j = HMAC(P, U_{j-1}); T_i = U_1 ^ ... ^ U_c */
    for (j = 1; j < iterations; j++) {
        c = inner;
        SHA256_Update(&c, u, sizeof u);
        SHA256_Final(u, &c);
        c = outer;
        SHA256_Update(&c, u, sizeof u);
        SHA256_Final(u, &c);
        for (i = 0; i < sizeof u; i++)
            out[i] ^= u[i];
    }
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(u, sizeof u);
    OPENSSL_cleanse(&inner, sizeof inner);
    OPENSSL_cleanse(&outer, sizeof outer);
    OPENSSL_cleanse(&c, sizeof c);
    return 0;
}

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
