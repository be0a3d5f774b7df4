/*
 * callbridge.ami._fastframe: the inner loop of AMI framing in C (optional; see framing.py).
 *
 * Why it exists: the ingest benchmark (issue 8) asks for 2.5x panoramisk's rate through framing,
 * typed decoding and the call tracker. In pure Python, turning one message into a dict costs more
 * than everything else on the path (~20 "Name: value" lines per event: a list, two strings and a
 * split per line, then scans of the whole run to prove it regular). This loop does all of that in
 * one pass over the characters.
 *
 * parse_run(text) takes the decoded text of complete AMI messages (up to, not including, the last
 * blank line) and returns a flat list [block_0, fields_0, name_0, block_1, ...]: each message's
 * text, a dict of its headers (the last of a repeated name wins) and its first header's value (the
 * event name, response status or action), or None, None for a message with a
 * line that is not a plain "Name: value" line with an ASCII name (no space, control character or
 * colon). Such a message is re-read by the Python line reader, which defines the semantics; this
 * loop only takes the lines on which every reader agrees, so it never changes a result, only its
 * cost. When the run itself is irregular (a bare LF, a bare CR before a line end, two blank lines in
 * a row, padding at either end) it returns None and framing.py's general path takes the whole run.
 *
 * The pure-Python path stays the reference: tests run both and compare (tests/ami/test_fastframe.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Header names repeat in every message; each distinct name becomes one interned str, found again by
 * its characters without building a str first. Open addressing; a full table just stops caching. */
#define NAME_MAX_LEN 48
#define NAME_SLOTS 512 /* power of two */

typedef struct {
    Py_ssize_t len; /* 0: empty slot */
    unsigned long hash;
    char chars[NAME_MAX_LEN];
    PyObject *name; /* strong reference, lives as long as the module */
} name_slot;

static name_slot names[NAME_SLOTS];
static int names_used = 0;

/* The cached str for an ASCII name of `len` characters (already hashed), or a new str. New ref. */
#define DEFINE_NAME_LOOKUP(FN, T)                                                                   \
    static PyObject *FN(const T *s, Py_ssize_t len, unsigned long hash)                             \
    {                                                                                               \
        if (len > NAME_MAX_LEN)                                                                     \
            goto uncached;                                                                          \
        for (unsigned long probe = hash;; probe++) {                                                \
            name_slot *slot = &names[probe & (NAME_SLOTS - 1)];                                     \
            if (slot->len == 0) {                                                                   \
                if (names_used >= NAME_SLOTS / 2)                                                   \
                    goto uncached;                                                                  \
                PyObject *name = PyUnicode_New(len, 127);                                           \
                if (name == NULL)                                                                   \
                    return NULL;                                                                    \
                Py_UCS1 *out = PyUnicode_1BYTE_DATA(name);                                          \
                for (Py_ssize_t k = 0; k < len; k++)                                                \
                    slot->chars[k] = (char)(out[k] = (Py_UCS1)s[k]);                                \
                PyUnicode_InternInPlace(&name);                                                     \
                slot->len = len;                                                                    \
                slot->hash = hash;                                                                  \
                slot->name = name;                                                                  \
                names_used++;                                                                       \
                Py_INCREF(name);                                                                    \
                return name;                                                                        \
            }                                                                                       \
            if (slot->hash == hash && slot->len == len) {                                           \
                Py_ssize_t k = 0;                                                                   \
                while (k < len && slot->chars[k] == (char)s[k])                                     \
                    k++;                                                                            \
                if (k == len) {                                                                     \
                    Py_INCREF(slot->name);                                                          \
                    return slot->name;                                                              \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    uncached:;                                                                                      \
        PyObject *name = PyUnicode_New(len, 127);                                                   \
        if (name == NULL)                                                                           \
            return NULL;                                                                            \
        Py_UCS1 *out = PyUnicode_1BYTE_DATA(name);                                                  \
        for (Py_ssize_t k = 0; k < len; k++)                                                        \
            out[k] = (Py_UCS1)s[k];                                                                 \
        return name;                                                                                \
    }

/* A value: ASCII (the common case) is copied straight into a compact ASCII str. New ref. */
#define DEFINE_VALUE(FN, T)                                                                         \
    static PyObject *FN(PyObject *src, const T *s, Py_ssize_t start, Py_ssize_t end, Py_UCS4 seen)  \
    {                                                                                               \
        if (seen >= 0x80)                                                                           \
            return PyUnicode_Substring(src, start, end);                                            \
        PyObject *value = PyUnicode_New(end - start, 127);                                          \
        if (value == NULL)                                                                          \
            return NULL;                                                                            \
        Py_UCS1 *out = PyUnicode_1BYTE_DATA(value);                                                 \
        for (Py_ssize_t k = start; k < end; k++)                                                    \
            *out++ = (Py_UCS1)s[k];                                                                 \
        return value;                                                                               \
    }

/* One parser per string kind (1, 2 or 4 bytes per character), so the inner loops index a plain
 * array. Returns 1 (run parsed into out), 0 (run irregular: out is left partly filled, the caller
 * discards it) or -1 (Python error set). */
#define DEFINE_RUN_PARSER(FN, T, NAME_FN, VALUE_FN)                                                 \
    static int FN(PyObject *src, const T *s, Py_ssize_t n, PyObject *out)                           \
    {                                                                                               \
        if (s[0] == '\r' || s[0] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\n')                   \
            return 0; /* padding at either end */                                                   \
        Py_ssize_t pos = 0;                                                                         \
        for (;;) {                                                                                  \
            Py_ssize_t start = pos, line = pos, end = n, next = n;                                  \
            PyObject *first = NULL; /* the first line's value: the message's name */                \
            PyObject *fields = _PyDict_NewPresized(24);                                             \
            if (fields == NULL)                                                                     \
                return -1;                                                                          \
            for (;;) {                                                                              \
                Py_ssize_t i = line;                                                                \
                unsigned long hash = 2166136261UL;                                                  \
                if (fields != Py_None) {                                                            \
                    while (i < n && s[i] > 0x20 && s[i] < 0x7f && s[i] != ':') {                    \
                        hash = (hash ^ (unsigned long)s[i]) * 16777619UL;                           \
                        i++;                                                                        \
                    }                                                                               \
                    if (i == line || i + 1 >= n || s[i] != ':' || s[i + 1] != ' ') {               \
                        Py_DECREF(fields);                                                          \
                        fields = Py_None;                                                           \
                        Py_INCREF(fields);                                                          \
                        Py_CLEAR(first);                                                            \
                    }                                                                               \
                }                                                                                   \
                Py_ssize_t value = i + 2, j = fields != Py_None ? value : line;                     \
                Py_UCS4 seen = 0;                                                                   \
                while (j < n && s[j] != '\r' && s[j] != '\n') {                                     \
                    seen |= s[j];                                                                   \
                    j++;                                                                            \
                }                                                                                   \
                if (j < n && (s[j] == '\n' || j + 1 >= n || s[j + 1] != '\n')) {                    \
                    Py_XDECREF(first);                                                              \
                    Py_DECREF(fields); /* a bare LF or CR: not a CRLF-only run */                   \
                    return 0;                                                                       \
                }                                                                                   \
                if (fields != Py_None) {                                                            \
                    PyObject *k = NAME_FN(s + line, i - line, hash);                                \
                    if (k == NULL) {                                                                \
                        Py_XDECREF(first);                                                          \
                        Py_DECREF(fields);                                                          \
                        return -1;                                                                  \
                    }                                                                               \
                    PyObject *v = VALUE_FN(src, s, value, j, seen);                                 \
                    if (v == NULL || PyDict_SetItem(fields, k, v) < 0) {                            \
                        Py_DECREF(k);                                                               \
                        Py_XDECREF(v);                                                              \
                        Py_XDECREF(first);                                                          \
                        Py_DECREF(fields);                                                          \
                        return -1;                                                                  \
                    }                                                                               \
                    if (line == start) {                                                            \
                        first = v;                                                                  \
                        Py_INCREF(first);                                                           \
                    }                                                                               \
                    Py_DECREF(k);                                                                   \
                    Py_DECREF(v);                                                                   \
                }                                                                                   \
                if (j >= n)                                                                         \
                    break; /* the run's last line */                                                \
                if (j + 3 < n && s[j + 2] == '\r' && s[j + 3] == '\n') {                            \
                    if ((j + 4 < n && (s[j + 4] == '\r' || s[j + 4] == '\n')) || j == start) {      \
                        Py_XDECREF(first);                                                          \
                        Py_DECREF(fields); /* two blank lines in a row */                           \
                        return 0;                                                                   \
                    }                                                                               \
                    end = j; /* a blank line: the message ends here */                              \
                    next = j + 4;                                                                   \
                    break;                                                                          \
                }                                                                                   \
                line = j + 2;                                                                       \
                if (s[line] == '\n') {                                                              \
                    Py_XDECREF(first);                                                              \
                    Py_DECREF(fields); /* CR LF LF: a blank line the CRLF split would not see */     \
                    return 0;                                                                       \
                }                                                                                   \
            }                                                                                       \
            PyObject *block = PyUnicode_Substring(src, start, end);                                 \
            if (block == NULL || PyList_Append(out, block) < 0 || PyList_Append(out, fields) < 0 || \
                PyList_Append(out, first != NULL ? first : Py_None) < 0) {                          \
                Py_XDECREF(block);                                                                  \
                Py_XDECREF(first);                                                                  \
                Py_DECREF(fields);                                                                  \
                return -1;                                                                          \
            }                                                                                       \
            Py_DECREF(block);                                                                       \
            Py_XDECREF(first);                                                                      \
            Py_DECREF(fields);                                                                      \
            if (next >= n)                                                                          \
                return 1;                                                                           \
            pos = next;                                                                             \
        }                                                                                           \
    }

DEFINE_NAME_LOOKUP(name_1, Py_UCS1)
DEFINE_NAME_LOOKUP(name_2, Py_UCS2)
DEFINE_NAME_LOOKUP(name_4, Py_UCS4)
DEFINE_VALUE(value_1, Py_UCS1)
DEFINE_VALUE(value_2, Py_UCS2)
DEFINE_VALUE(value_4, Py_UCS4)
DEFINE_RUN_PARSER(parse_run_1, Py_UCS1, name_1, value_1)
DEFINE_RUN_PARSER(parse_run_2, Py_UCS2, name_2, value_2)
DEFINE_RUN_PARSER(parse_run_4, Py_UCS4, name_4, value_4)

static PyObject *
parse_run(PyObject *module, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "parse_run() expects str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (n == 0)
        Py_RETURN_NONE;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    int rc;
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        rc = parse_run_1(text, PyUnicode_1BYTE_DATA(text), n, out);
        break;
    case PyUnicode_2BYTE_KIND:
        rc = parse_run_2(text, PyUnicode_2BYTE_DATA(text), n, out);
        break;
    default:
        rc = parse_run_4(text, PyUnicode_4BYTE_DATA(text), n, out);
        break;
    }
    if (rc <= 0) {
        Py_DECREF(out);
        if (rc < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"parse_run", parse_run, METH_O,
     "parse_run(text) -> [block, fields-or-None, name-or-None, ...], or None when the run is not CRLF-only and regular."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "callbridge.ami._fastframe", "AMI framing inner loop in C (optional).", -1, methods,
};

PyMODINIT_FUNC
PyInit__fastframe(void)
{
    return PyModule_Create(&module);
}
