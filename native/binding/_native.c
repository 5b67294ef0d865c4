/* CPython binding for dwfs's native kernels: takes buffers, releases the GIL
 * around the arithmetic, long copies, flushes and direct reads, and returns new
 * objects. The only importer is dwfs._accel. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>

#include "dwfs_native.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

static PyObject *py_simd_level(PyObject *self, PyObject *args) {
    (void)self; (void)args;
    return PyLong_FromLong(dwfs_gf_simd_level());
}

static PyObject *py_force_level(PyObject *self, PyObject *arg) {
    (void)self;
    long level = PyLong_AsLong(arg);
    if (level == -1 && PyErr_Occurred()) return NULL;
    dwfs_gf_force_level((int)level);
    return PyLong_FromLong(dwfs_gf_simd_level());
}

static void release_all(Py_buffer *bufs, int n) {
    for (int i = 0; i < n; i++) PyBuffer_Release(&bufs[i]);
}

static PyObject *py_gf_matmul(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer matrix;
    int rows, cols;
    PyObject *seq_obj;
    if (!PyArg_ParseTuple(args, "y*iiO", &matrix, &rows, &cols, &seq_obj)) return NULL;
    PyObject *seq = PySequence_Fast(seq_obj, "inputs must be a sequence of buffers");
    if (seq == NULL) { PyBuffer_Release(&matrix); return NULL; }
    Py_buffer bufs[DWFS_MAX_SHARDS];
    int got = 0;
    PyObject *result = NULL;
    if (rows < 0 || cols < 1 || rows > DWFS_MAX_SHARDS || cols > DWFS_MAX_SHARDS ||
        PySequence_Fast_GET_SIZE(seq) != cols || matrix.len != (Py_ssize_t)rows * cols) {
        PyErr_SetString(PyExc_ValueError, "matrix shape does not match the inputs");
        goto done;
    }
    for (; got < cols; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &bufs[got], PyBUF_SIMPLE) < 0)
            goto done;
        if (bufs[got].len != bufs[0].len) {
            got++;
            PyErr_SetString(PyExc_ValueError, "inputs differ in length");
            goto done;
        }
    }
    size_t len = (size_t)bufs[0].len;
    const uint8_t *in[DWFS_MAX_SHARDS];
    uint8_t *out[DWFS_MAX_SHARDS];
    for (int c = 0; c < cols; c++) in[c] = (const uint8_t *)bufs[c].buf;
    result = PyList_New(rows);
    if (result == NULL) goto done;
    for (int r = 0; r < rows; r++) {
        PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
        if (b == NULL) { Py_CLEAR(result); goto done; }
        PyList_SET_ITEM(result, r, b);
        out[r] = (uint8_t *)PyBytes_AS_STRING(b);
    }
    Py_BEGIN_ALLOW_THREADS
    dwfs_gf_matmul((const uint8_t *)matrix.buf, rows, cols, in, out, len);
    Py_END_ALLOW_THREADS
done:
    release_all(bufs, got);
    Py_DECREF(seq);
    PyBuffer_Release(&matrix);
    return result;
}

#define MAX_CUTS 65536

static PyObject *py_cdc_cuts(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data, gear;
    Py_ssize_t min_size, avg_size, max_size;
    unsigned long long mask_s, mask_l;
    int final;
    if (!PyArg_ParseTuple(args, "y*nnnKKy*p", &data, &min_size, &avg_size, &max_size,
                          &mask_s, &mask_l, &gear, &final))
        return NULL;
    PyObject *result = NULL;
    size_t *cuts = NULL; /* on the heap: 512 KiB is too much for a thread's stack */
    if (gear.len != 256 * 8 || min_size < 0 || avg_size < min_size || max_size < avg_size ||
        max_size < 1) {
        PyErr_SetString(PyExc_ValueError, "bad chunker parameters");
        goto done;
    }
    cuts = PyMem_RawMalloc(MAX_CUTS * sizeof(size_t));
    if (cuts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    size_t ncuts = 0, pos = 0, n = (size_t)data.len;
    const uint8_t *p = (const uint8_t *)data.buf;
    const uint64_t *g = (const uint64_t *)gear.buf;
    Py_BEGIN_ALLOW_THREADS
    while (pos < n && ncuts < MAX_CUTS) {
        size_t cut = dwfs_cdc_cut(p + pos, n - pos, (size_t)min_size, (size_t)avg_size,
                                  (size_t)max_size, mask_s, mask_l, g);
        if (!final && pos + cut == n && cut < (size_t)max_size) break;
        cuts[ncuts++] = cut;
        pos += cut;
    }
    Py_END_ALLOW_THREADS
    result = PyList_New((Py_ssize_t)ncuts);
    if (result == NULL) goto done;
    for (size_t i = 0; i < ncuts; i++) {
        PyObject *v = PyLong_FromSize_t(cuts[i]);
        if (v == NULL) { Py_CLEAR(result); goto done; }
        PyList_SET_ITEM(result, (Py_ssize_t)i, v);
    }
done:
    PyMem_RawFree(cuts);
    PyBuffer_Release(&data);
    PyBuffer_Release(&gear);
    return result;
}

/* The concatenation of buffers as one new bytes object; a long copy runs
 * without the GIL, so chunk loads in worker threads go on meanwhile. */
#define JOIN_NOGIL_MIN (64 * 1024)

static void copy_all(char *dst, const Py_buffer *bufs, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        memcpy(dst, bufs[i].buf, (size_t)bufs[i].len);
        dst += bufs[i].len;
    }
}

static PyObject *py_join(PyObject *self, PyObject *seq_obj) {
    (void)self;
    PyObject *seq = PySequence_Fast(seq_obj, "parts must be a sequence of buffers");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), got = 0, total = 0;
    PyObject *result = NULL;
    Py_buffer *bufs = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Py_buffer));
    if (bufs == NULL) { PyErr_NoMemory(); goto done; }
    for (; got < n; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &bufs[got], PyBUF_SIMPLE) < 0)
            goto done;
        total += bufs[got].len;
    }
    result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL) goto done;
    char *dst = PyBytes_AS_STRING(result);
    if (total >= JOIN_NOGIL_MIN) {
        Py_BEGIN_ALLOW_THREADS
        copy_all(dst, bufs, n);
        Py_END_ALLOW_THREADS
    } else {
        copy_all(dst, bufs, n);
    }
done:
    if (bufs != NULL) { release_all(bufs, (int)got); PyMem_Free(bufs); }
    Py_DECREF(seq);
    return result;
}

/* A bytearray of n bytes left as the allocator gave them, for a caller that
 * overwrites every byte before reading any (a read straight into it): zeroing
 * a stripe-sized buffer first costs as much as the AEAD that follows. */
static PyObject *py_uninitialized(PyObject *self, PyObject *arg) {
    (void)self;
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 0) { PyErr_SetString(PyExc_ValueError, "negative size"); return NULL; }
    return PyByteArray_FromStringAndSize(NULL, n);
}

/* Writes (fd, bytes, offset, flush) in order, then flushes the marked ones
 * together, all without the GIL; each write's errno. The buffers are held
 * (and their objects kept alive) until the writes are done. */
static PyObject *py_write_flush(PyObject *self, PyObject *arg) {
    (void)self;
    PyObject *seq = PySequence_Fast(arg, "writes must be a sequence of (fd, data, offset, flush)");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *result = NULL;
    Py_ssize_t held = 0;
    struct dwfs_write *writes = PyMem_Calloc((size_t)n + 1, sizeof(struct dwfs_write));
    Py_buffer *views = PyMem_Calloc((size_t)n + 1, sizeof(Py_buffer));
    int *errs = PyMem_Calloc((size_t)n + 1, sizeof(int));
    if (writes == NULL || views == NULL || errs == NULL) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) {
        int fd, flush;
        long long offset;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "iy*Lp;a write is (fd, data, offset, flush)",
                              &fd, &views[i], &offset, &flush))
            goto done;
        held++;
        if (fd < 0 || offset < 0) {
            PyErr_SetString(PyExc_ValueError, "a write needs a descriptor and an offset, not negative");
            goto done;
        }
        writes[i] = (struct dwfs_write){fd, views[i].buf, (size_t)views[i].len, offset, flush};
    }
    Py_BEGIN_ALLOW_THREADS
    dwfs_write_flush(writes, (int)n, errs);
    Py_END_ALLOW_THREADS
    result = PyList_New(n);
    if (result == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *err = PyLong_FromLong(errs[i]);
        if (err == NULL) { Py_CLEAR(result); goto done; }
        PyList_SET_ITEM(result, i, err);
    }
done:
    for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&views[i]);
    PyMem_Free(writes);
    PyMem_Free(views);
    PyMem_Free(errs);
    Py_DECREF(seq);
    return result;
}

/* read_direct_many(reads): fill each (fd, offset, buffers) in order from
 * offset of a file opened with O_DIRECT, all in flight at once where the
 * kernel can, without the GIL; each one's bytes read, or its -errno. */
static PyObject *py_read_direct_many(PyObject *self, PyObject *arg) {
    (void)self;
    PyObject *seq = PySequence_Fast(arg, "reads must be a sequence of (fd, offset, buffers)");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *result = NULL;
    PyObject **lists = PyMem_Calloc((size_t)n + 1, sizeof(PyObject *));
    struct dwfs_read *reads = PyMem_Calloc((size_t)n + 1, sizeof(struct dwfs_read));
    Py_ssize_t parts_total = 0, held = 0;
    Py_buffer *views = NULL;
    struct dwfs_part *parts = NULL;
    if (lists == NULL || reads == NULL) { PyErr_NoMemory(); goto done; }
    if (n > INT_MAX) { PyErr_SetString(PyExc_ValueError, "too many reads"); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) {
        int fd;
        long long offset;
        PyObject *buffers;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "iLO;a read is (fd, offset, buffers)", &fd, &offset, &buffers))
            goto done;
        if (fd < 0 || offset < 0) {
            PyErr_SetString(PyExc_ValueError, "a read needs a descriptor and an offset, not negative");
            goto done;
        }
        lists[i] = PySequence_Fast(buffers, "buffers must be a sequence of writable buffers");
        if (lists[i] == NULL) goto done;
        reads[i].fd = fd;
        reads[i].offset = (uint64_t)offset;
        parts_total += PySequence_Fast_GET_SIZE(lists[i]);
    }
    views = PyMem_Calloc((size_t)parts_total + 1, sizeof(Py_buffer));
    parts = PyMem_Calloc((size_t)parts_total + 1, sizeof(struct dwfs_part));
    if (views == NULL || parts == NULL) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t count = PySequence_Fast_GET_SIZE(lists[i]);
        reads[i].parts = parts + held;
        reads[i].n = (int)count;
        for (Py_ssize_t j = 0; j < count; j++) {
            if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(lists[i], j), &views[held], PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
                goto done;
            parts[held] = (struct dwfs_part){views[held].buf, (size_t)views[held].len};
            held++;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    dwfs_read_direct_many(reads, (int)n);
    Py_END_ALLOW_THREADS
    result = PyList_New(n);
    if (result == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *got = PyLong_FromSsize_t(reads[i].result);
        if (got == NULL) { Py_CLEAR(result); goto done; }
        PyList_SET_ITEM(result, i, got);
    }
done:
    for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&views[i]);
    for (Py_ssize_t i = 0; lists != NULL && i < n; i++) Py_XDECREF(lists[i]);
    PyMem_Free(lists);
    PyMem_Free(reads);
    PyMem_Free(views);
    PyMem_Free(parts);
    Py_DECREF(seq);
    return result;
}

/* Keep freed stripe-sized buffers in the heap instead of returning them to the
 * kernel: glibc otherwise mmaps each buffer over 128 KiB afresh and every page
 * of it faults on first touch, which costs more than the coding itself. */
static PyObject *py_tune_allocator(PyObject *self, PyObject *args) {
    (void)self; (void)args;
#ifdef __GLIBC__
    int ok = mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024) && mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
    return PyBool_FromLong(ok);
#else
    Py_RETURN_FALSE;
#endif
}

/* Start writeback of a file's dirty pages without waiting for it, so the disk
 * writes while the caller goes on computing, and a later fsync waits only for
 * what was written since: the kernel itself writes dirty pages only once they
 * are 30 s old or fill a tenth of memory, which left every put's writing to
 * the commit's fsync. Returns 0 or the errno; where the platform cannot start
 * writeback, 0 (the kernel's own writeback still runs). */
static PyObject *py_start_writeback(PyObject *self, PyObject *arg) {
    (void)self;
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred()) return NULL;
    if (fd < 0 || fd > INT_MAX) { PyErr_SetString(PyExc_ValueError, "not a descriptor"); return NULL; }
    int err = 0;
#if defined(__linux__)
    Py_BEGIN_ALLOW_THREADS
    if (sync_file_range((int)fd, 0, 0, SYNC_FILE_RANGE_WRITE) != 0) err = errno;
    Py_END_ALLOW_THREADS
#endif
    return PyLong_FromLong(err);
}

static PyMethodDef methods[] = {
    {"start_writeback", py_start_writeback, METH_O, "Start writeback of a file's dirty pages (sync_file_range); 0 or the errno."},
    {"tune_allocator", py_tune_allocator, METH_NOARGS, "Keep large freed buffers for reuse (glibc)."},
    {"simd_level", py_simd_level, METH_NOARGS, "The GF(2^8) vector path in use: 0, 1 or 2."},
    {"force_level", py_force_level, METH_O, "Cap the vector path (for tests and benchmarks)."},
    {"gf_matmul", py_gf_matmul, METH_VARARGS, "Multiply a GF(2^8) matrix by equal-length buffers."},
    {"cdc_cuts", py_cdc_cuts, METH_VARARGS, "FastCDC chunk lengths of a buffer."},
    {"join", py_join, METH_O, "Concatenate buffers into new bytes, long copies without the GIL."},
    {"uninitialized", py_uninitialized, METH_O, "A bytearray whose bytes the caller overwrites before reading."},
    {"write_flush", py_write_flush, METH_O, "pwrite each (fd, data, offset, flush), then fdatasync the marked ones at once; their errnos."},
    {"read_direct_many", py_read_direct_many, METH_O, "Each (fd, offset, buffers) read directly, all in flight at once; bytes read or -errno each."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dwfs._native", "dwfs native kernels", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    dwfs_gf_init();
    return PyModule_Create(&module);
}
