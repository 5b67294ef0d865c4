/* What loading a chunk costs in C, for deciding whether a native load path
 * would pay: 1,000 sealed chunks of 300 KB (about dwfs's average) in a file
 * on tmpfs, each read back with preadv, decrypted and authenticated with
 * AES-256-GCM through the system's libcrypto, and both; last, both into
 * newly allocated memory that is kept, as a chunk cache keeps it. One thread,
 * buffers reused unless said otherwise.
 *
 *     loadfloor [DIRECTORY]      (default /dev/shm)
 *
 * Not part of dwfs: docs/performance.md has its figures beside dwfs's own
 * load. Needs libcrypto's headers (libssl-dev, which `make setup` installs). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (300 * 1024)
#define CHUNKS 1000

static double seconds(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int open_gcm(EVP_CIPHER_CTX *c, const unsigned char *key, const unsigned char *iv,
                    const unsigned char *in, unsigned char *out, unsigned char *tag) {
    int n;
    if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) != 1) return 0;
    if (EVP_DecryptUpdate(c, out, &n, in, CHUNK) != 1) return 0;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1) return 0;
    return EVP_DecryptFinal_ex(c, out + n, &n) == 1;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/dev/shm";
    char path[4096];
    snprintf(path, sizeof path, "%s/loadfloor-%d", dir, (int)getpid());
    unsigned char key[32], iv[12], tag[16];
    memset(key, 7, sizeof key);
    memset(iv, 9, sizeof iv);
    unsigned char *plain = malloc(CHUNK), *sealed = malloc(CHUNK), *buf = malloc(CHUNK),
                  *out = malloc(CHUNK);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!plain || !sealed || !buf || !out || !c) return 1;
    for (int i = 0; i < CHUNK; i++) plain[i] = (unsigned char)rand();
    int n;
    if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
        EVP_EncryptUpdate(c, sealed, &n, plain, CHUNK) != 1 ||
        EVP_EncryptFinal_ex(c, sealed + n, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
        return 1;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) { perror(path); return 1; }
    unlink(path);
    for (int i = 0; i < CHUNKS; i++)
        if (pwrite(fd, sealed, CHUNK, (off_t)i * CHUNK) != CHUNK) { perror("pwrite"); return 1; }

    static const char *names[] = {"preadv", "AES-256-GCM open", "preadv + open",
                                  "preadv + open into new memory, kept"};
    printf("| %s | us per chunk | CPU ms per MB |\n|---|---|---|\n", OpenSSL_version(OPENSSL_VERSION));
    for (int mode = 0; mode < 4; mode++) {
        double cpu = seconds(CLOCK_PROCESS_CPUTIME_ID);
        int bad = 0;
        for (int i = 0; i < CHUNKS; i++) {
            unsigned char *to = out;
            if (mode == 3 && (to = malloc(CHUNK)) == NULL) return 1;
            if (mode != 1) {
                struct iovec v = {buf, CHUNK};
                bad += preadv(fd, &v, 1, (off_t)i * CHUNK) != CHUNK;
            }
            if (mode >= 1) bad += !open_gcm(c, key, iv, mode == 1 ? sealed : buf, to, tag);
        }
        cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu;
        if (bad) { fprintf(stderr, "%d chunks failed\n", bad); return 1; }
        printf("| %s | %.1f | %.3f |\n", names[mode], 1e6 * cpu / CHUNKS,
               1e3 * cpu / (CHUNKS * (CHUNK / 1e6)));
    }
    EVP_CIPHER_CTX_free(c);
    close(fd);
    return 0;
}
