/*
 * callbridge.ami.fast._fastframe: the inner loop of AMI framing in C (optional; loaded and configured by
 * callbridge/ami/fast/__init__.py, which holds the table of the events it builds; see also framing.py).
 *
 * Why it exists: the ingest benchmark (issue 8) asks for 2.5x panoramisk's rate through framing,
 * typed decoding and the call tracker. In pure Python, turning one message into a dict costs more
 * than everything else on the path (~20 "Name: value" lines per event: a list, two strings and a
 * split per line, then scans of the whole run to prove it regular). This loop does all of that in
 * one pass over the bytes, and builds the framer's AmiMessage objects itself.
 *
 * parse_run(buffer, start, end) reads buffer[start:end], the raw bytes of complete AMI messages up
 * to (not including) the last blank line, and returns (items, texts) where items holds, in order,
 * one AmiMessage per message and `texts` counts the items that are instead a str: the decoded text
 * of a message with a line that is not a plain "Name: value" line with an ASCII name (no space,
 * control character or colon), which the Python line reader re-reads (it defines the semantics;
 * this loop only takes the lines on which every reader agrees, so it never changes a result, only
 * its cost). It returns None when the run is irregular (a bare LF, a bare CR before a line end, two
 * blank lines in a row, padding at either end) or is not valid UTF-8: framing.py's general path
 * takes the whole run then.
 *
 * Each message gets its header dict (the last of a repeated name wins), its name (the first
 * header's value), its kind (event/response/action/other), its text only when a header name
 * repeats (the dict alone cannot give the wire order then), and, for the event kinds set by
 * configure_event(), the typed event, built from the channel snapshots of the prefixes set by
 * configure_snapshots() when every field of one is there (the Python decoders read the dict
 * otherwise).
 *
 * Strings: header names are interned once each; short values go through a bounded cache, so that
 * the values that repeat from event to event (a channel's name, uniqueid, state, context, caller
 * number ...) are one object each while they keep coming: fewer allocations here, and a hash that
 * is computed once, not at every dict look-up of the tracker. A header whose values do not come again
 * while cached (a timestamp; uniqueids at 100k calls) is taken off the cache for a while (cache_on()).
 *
 * The pure-Python path stays the reference: tests run both and compare (tests/ami/test_fastframe.py,
 * tests/fuzz/test_fuzz_ami_stream.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h> /* T_OBJECT_EX */
#include <stdint.h>
#include <string.h>

/* ---- header names: one interned str per distinct name, found again by its bytes ---------------- */

#define NAME_MAX_LEN 48
#define NAME_SLOTS 512 /* power of two */

typedef struct {
    Py_ssize_t len; /* 0: empty slot */
    unsigned long hash;
    char chars[NAME_MAX_LEN];
    PyObject *name; /* strong reference, lives as long as the module */
    int role;       /* prefix * SNAP_FIELDS + field of a snapshot field, or -1 */
    /* how its values fare in the value cache: see cache_on() */
    uint32_t tries, hits, skip;
} name_slot;

static name_slot names[NAME_SLOTS];
static int names_used = 0;

/* ---- snapshot configuration (configure_snapshots) ------------------------------------------------ */

#define SNAP_FIELDS 12
#define SNAP_PREFIXES 2
static PyTypeObject *snap_type = NULL;
static int snap_prefixes = 0;
static char snap_names[SNAP_PREFIXES][SNAP_FIELDS][NAME_MAX_LEN];
static Py_ssize_t snap_lens[SNAP_PREFIXES][SNAP_FIELDS];
static unsigned int unknown_mask = 0; /* fields where Asterisk's "<unknown>" means "" */

static int
role_of(const char *s, Py_ssize_t len)
{
    for (int p = 0; p < snap_prefixes; p++)
        for (int f = 0; f < SNAP_FIELDS; f++)
            if (snap_lens[p][f] == len && memcmp(snap_names[p][f], s, (size_t)len) == 0)
                return p * SNAP_FIELDS + f;
    return -1;
}

/* ---- the AmiMessage type and its slots (configure) ---------------------------------------------- */

static PyTypeObject *msg_type = NULL;
static Py_ssize_t off_fields, off_name, off_kind, off_text, off_event;

/* ---- typed events built here (configure_event): one spec per hot event kind ------------------- */

enum { SRC_TS, SRC_SNAP, SRC_DEST, SRC_BRIDGE, SRC_STR, SRC_INT, SRC_OPT_INT };
#define MAX_EVENT_FIELDS 12
#define MAX_EVENTS 64

typedef struct {
    PyTypeObject *cls;
    int nfields;
    int source[MAX_EVENT_FIELDS];
    Py_ssize_t offset[MAX_EVENT_FIELDS];
    PyObject *header[MAX_EVENT_FIELDS]; /* interned header name, or NULL */
} event_spec;

static event_spec specs[MAX_EVENTS];
static int nspecs = 0;
static PyObject *spec_index = NULL; /* dict: event name -> index into specs */
static PyObject *timestamp_header = NULL;
static PyTypeObject *bridge_type = NULL;
static PyObject *bridge_headers[6]; /* the BridgeSnapshot fields; the last one a number */
static PyObject *kind_event, *kind_response, *kind_action, *kind_other, *empty, *zero;

/* memcmp(a, b, len) == 0 for short values, 8 bytes at a time without a library call. */
static inline int
same_bytes(const unsigned char *a, const unsigned char *b, Py_ssize_t len)
{
    Py_ssize_t k = 0;
    for (; k + 8 <= len; k += 8) {
        uint64_t x, y;
        memcpy(&x, a + k, 8);
        memcpy(&y, b + k, 8);
        if (x != y)
            return 0;
    }
    for (; k < len; k++)
        if (a[k] != b[k])
            return 0;
    return 1;
}

/* The cached str for an ASCII name (already hashed), or a new str; *role gets its snapshot role, *at
 * its slot (NULL for a name not cached). */
static PyObject *
name_of(const unsigned char *s, Py_ssize_t len, unsigned long hash, int *role, name_slot **at)
{
    *role = -1;
    *at = NULL;
    if (len <= NAME_MAX_LEN) {
        for (unsigned long probe = hash;; probe++) {
            name_slot *slot = &names[probe & (NAME_SLOTS - 1)];
            if (slot->len == 0) {
                if (names_used >= NAME_SLOTS / 2)
                    break; /* full: stop caching */
                PyObject *name = PyUnicode_FromStringAndSize((const char *)s, len);
                if (name == NULL)
                    return NULL;
                PyUnicode_InternInPlace(&name);
                memcpy(slot->chars, s, (size_t)len);
                slot->len = len;
                slot->hash = hash;
                slot->name = name;
                slot->role = role_of(slot->chars, len);
                names_used++;
                *role = slot->role;
                *at = slot;
                Py_INCREF(name);
                return name;
            }
            if (slot->hash == hash && slot->len == len && same_bytes((const unsigned char *)slot->chars, s, len)) {
                *role = slot->role;
                *at = slot;
                Py_INCREF(slot->name);
                return slot->name;
            }
        }
    }
    *role = role_of((const char *)s, len);
    return PyUnicode_FromStringAndSize((const char *)s, len);
}

/* ---- values: ASCII copied straight into a compact str, short ones through a bounded cache ------- */

#define VALUE_SETS 4096 /* power of two; two entries each: at most 8192 cached strs */
#define VALUE_MAX_LEN 64

typedef struct {
    uint64_t hash[2];
    PyObject *str[2]; /* strong references, or NULL; [0] is the more recently used */
} value_set;

static value_set values[VALUE_SETS];

/* Length and three 8-byte windows (start, middle, end): enough to tell apart the values that differ
 * by a few characters (uniqueids, channel names). A collision only costs a cache miss. */
static inline uint64_t
value_hash(const unsigned char *s, Py_ssize_t len)
{
    uint64_t a = 0, b = 0, c = 0;
    if (len >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + len - 8, 8);
        memcpy(&c, s + len / 2 - 4, 8);
    } else {
        for (Py_ssize_t k = 0; k < len; k++) /* not memcpy: a call for a variable size */
            a |= (uint64_t)s[k] << (8 * k);
    }
    uint64_t h = (a ^ ((uint64_t)len << 56)) * 0x9E3779B97F4A7C15ULL;
    h = (h ^ (h >> 31) ^ b) * 0xBF58476D1CE4E5B9ULL;
    h = (h ^ (h >> 29) ^ c) * 0x94D049BB133111EBULL;
    return h ^ (h >> 32);
}

/* Whether a value of this header goes through the cache. The values of some headers hardly ever come
 * again while they are still cached: a Timestamp never, and with tens of thousands of calls up neither do
 * their uniqueids, channel names or numbers (the cache holds 8192). For those the cache is only a cost,
 * and at 100k calls a large one: each put drops the set's older str, by then out of the CPU caches, and
 * pushes out a value that would have come again. So each header is watched: when fewer than one in
 * eight of PROBE_LOOKUPS of its values were found, the next SKIP_LOOKUPS of them go straight to a new
 * str, and then it is watched again (the calls up change). A header of a name not cached (slot NULL)
 * always goes through. Which str object a value is never changes what it equals. */
#define PROBE_LOOKUPS 1024
#define SKIP_LOOKUPS 65536

static inline int
cache_on(name_slot *slot)
{
    if (slot == NULL || slot->skip == 0)
        return 1;
    slot->skip--;
    return 0;
}

static inline void
cache_note(name_slot *slot, uint32_t hit)
{
    if (slot == NULL)
        return;
    slot->hits += hit;
    if (++slot->tries == PROBE_LOOKUPS) {
        if (slot->hits * 8 < PROBE_LOOKUPS)
            slot->skip = SKIP_LOOKUPS;
        slot->tries = slot->hits = 0;
    }
}

/* A cache hit: moved to the front of its set (most recently used first), a new reference. */
static inline PyObject *
cache_hit(value_set *set, int w)
{
    PyObject *hit = set->str[w];
    if (w) { /* the two swap places */
        uint64_t hash = set->hash[1];
        set->str[1] = set->str[0];
        set->hash[1] = set->hash[0];
        set->str[0] = hit;
        set->hash[0] = hash;
    }
    Py_INCREF(hit);
    return hit;
}

/* A new value into its set, in front; the least recently used of the two is dropped. */
static inline void
cache_put(value_set *set, uint64_t hash, PyObject *value)
{
    Py_XDECREF(set->str[1]);
    set->str[1] = set->str[0];
    set->hash[1] = set->hash[0];
    Py_INCREF(value);
    set->str[0] = value;
    set->hash[0] = hash;
}

static PyObject *
ascii_value(const unsigned char *s, Py_ssize_t len, name_slot *slot)
{
    if (len == 0) {
        Py_INCREF(empty);
        return empty;
    }
    value_set *set = NULL;
    uint64_t hash = 0;
    if (len <= VALUE_MAX_LEN && cache_on(slot)) {
        hash = value_hash(s, len);
        set = &values[hash & (VALUE_SETS - 1)];
        for (int w = 0; w < 2; w++) {
            PyObject *hit = set->str[w];
            if (hit != NULL && set->hash[w] == hash && PyUnicode_IS_ASCII(hit) && PyUnicode_GET_LENGTH(hit) == len &&
                same_bytes(PyUnicode_1BYTE_DATA(hit), s, len)) {
                cache_note(slot, 1);
                return cache_hit(set, w);
            }
        }
        cache_note(slot, 0);
    }
    PyObject *value = PyUnicode_New(len, 127);
    if (value == NULL)
        return NULL;
    memcpy(PyUnicode_1BYTE_DATA(value), s, (size_t)len);
    if (set != NULL)
        cache_put(set, hash, value);
    return value;
}

/* A value with non-ASCII bytes (strict UTF-8) through the same cache, compared by its UTF-8 form, which
 * CPython keeps with the str once asked for: callers' names (张伟, José Müller) repeat from event to
 * event as much as the rest, and each decoded anew was a copy per snapshot the tracker kept. */
static PyObject *
utf8_value(const unsigned char *s, Py_ssize_t len, name_slot *slot)
{
    value_set *set = NULL;
    uint64_t hash = 0;
    if (len <= VALUE_MAX_LEN && cache_on(slot)) {
        hash = value_hash(s, len);
        set = &values[hash & (VALUE_SETS - 1)];
        for (int w = 0; w < 2; w++) {
            PyObject *hit = set->str[w];
            if (hit == NULL || set->hash[w] != hash || PyUnicode_IS_ASCII(hit))
                continue;
            Py_ssize_t n = 0;
            const char *utf8 = PyUnicode_AsUTF8AndSize(hit, &n); /* kept in the str since it was cached */
            if (utf8 == NULL) {
                PyErr_Clear();
                continue;
            }
            if (n == len && memcmp(utf8, s, (size_t)len) == 0) {
                cache_note(slot, 1);
                return cache_hit(set, w);
            }
        }
        cache_note(slot, 0);
    }
    PyObject *value = PyUnicode_DecodeUTF8((const char *)s, len, NULL);
    if (value == NULL || set == NULL)
        return value;
    Py_ssize_t n = 0;
    if (PyUnicode_AsUTF8AndSize(value, &n) == NULL) { /* the UTF-8 form, for the next compare */
        PyErr_Clear();
        return value;
    }
    cache_put(set, hash, value);
    return value;
}

/* A value: ASCII straight into a compact str, anything else decoded as strict UTF-8, both through the
 * cache. NULL with an error set (a UnicodeDecodeError makes the caller give up the run). */
static inline PyObject *
make_value(const unsigned char *s, Py_ssize_t len, unsigned char seen, name_slot *slot)
{
    if (seen & 0x80)
        return utf8_value(s, len, slot);
    return ascii_value(s, len, slot);
}

/* ---- scanning ----------------------------------------------------------------------------------- */

/* Bytes a header name may hold on the fast path: printable ASCII but space and colon. */
static unsigned char name_byte[256];

/* Where the line from j ends: its first CR or LF (n when neither comes). *seen gets 0x80 when a byte
 * before it is not ASCII. memchr finds the CR; the bytes before it are checked 8 at a time for LF
 * and the high bit (values average a dozen bytes, some far longer). */
static inline Py_ssize_t
line_end(const unsigned char *s, Py_ssize_t j, Py_ssize_t n, unsigned char *seen)
{
    const unsigned char *cr = memchr(s + j, '\r', (size_t)(n - j));
    Py_ssize_t end = cr != NULL ? cr - s : n, k = j;
    uint64_t high = 0;
    for (; k + 8 <= end; k += 8) {
        uint64_t x, t;
        memcpy(&x, s + k, 8);
        t = x ^ 0x0A0A0A0A0A0A0A0AULL; /* a zero byte where x has an LF */
        if ((t - 0x0101010101010101ULL) & ~t & 0x8080808080808080ULL)
            break; /* an LF in these 8: the byte loop below finds it */
        high |= x;
    }
    unsigned char rest = 0;
    for (; k < end; k++) {
        if (s[k] == '\n') {
            end = k;
            break;
        }
        rest |= s[k];
    }
    *seen = ((high & 0x8080808080808080ULL) != 0 || (rest & 0x80)) ? 0x80 : 0;
    return end;
}

/* ---- one message in the making ------------------------------------------------------------------ */

typedef struct {
    PyObject *fields; /* dict, or Py_None once a line is not plain */
    PyObject *first;  /* the first line's value */
    int lines;
    int kind; /* 0 other, 1 event, 2 response, 3 action */
    unsigned int seen_mask[SNAP_PREFIXES];
    PyObject *snap[SNAP_PREFIXES][SNAP_FIELDS]; /* strong references */
} message;

static void
message_clear(message *m)
{
    Py_CLEAR(m->fields);
    Py_CLEAR(m->first);
    for (int p = 0; p < SNAP_PREFIXES; p++) {
        if (m->seen_mask[p])
            for (int f = 0; f < SNAP_FIELDS; f++)
                Py_CLEAR(m->snap[p][f]);
        m->seen_mask[p] = 0;
    }
}

/* The snapshot of prefix p when every field was seen (a new reference), else None. */
static PyObject *
build_snapshot(message *m, int p)
{
    if (snap_type == NULL || m->seen_mask[p] != (1u << SNAP_FIELDS) - 1)
        Py_RETURN_NONE;
    PyObject *t = snap_type->tp_alloc(snap_type, SNAP_FIELDS);
    if (t == NULL)
        return NULL;
    for (int f = 0; f < SNAP_FIELDS; f++) {
        PyObject *v = m->snap[p][f];
        m->snap[p][f] = NULL; /* the tuple takes the reference */
        if ((unknown_mask >> f) & 1 && PyUnicode_GET_LENGTH(v) == 9 && PyUnicode_IS_ASCII(v) &&
            memcmp(PyUnicode_1BYTE_DATA(v), "<unknown>", 9) == 0) {
            Py_DECREF(v);
            Py_INCREF(empty);
            v = empty;
        }
        PyTuple_SET_ITEM(t, f, v);
    }
    m->seen_mask[p] = 0;
    return t;
}

#define SET_SLOT(obj, off, value) (*(PyObject **)((char *)(obj) + (off)) = (value))

/* int(value) as fields.to_int/opt_int read it: absent or "" -> dflt, not a number -> dflt. New ref;
 * NULL with an error set only for errors other than ValueError. */
static PyObject *
header_int(PyObject *fields, PyObject *name, PyObject *dflt)
{
    PyObject *v = PyDict_GetItemWithError(fields, name); /* borrowed */
    if (v == NULL && PyErr_Occurred())
        return NULL;
    if (v == NULL || PyUnicode_GET_LENGTH(v) == 0) {
        Py_INCREF(dflt);
        return dflt;
    }
    PyObject *n = PyLong_FromUnicodeObject(v, 10);
    if (n == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
        Py_INCREF(dflt);
        return dflt;
    }
    return n;
}

/* The header's value, or "" when absent. New ref; NULL only with an error set. */
static PyObject *
header_str(PyObject *fields, PyObject *name)
{
    PyObject *v = PyDict_GetItemWithError(fields, name);
    if (v == NULL) {
        if (PyErr_Occurred())
            return NULL;
        v = empty;
    }
    Py_INCREF(v);
    return v;
}

/* fields.bridge(d): BridgeSnapshot of the Bridge* headers ("" / 0 for missing ones). New ref. */
static PyObject *
build_bridge(PyObject *fields)
{
    PyObject *t = bridge_type->tp_alloc(bridge_type, 6);
    if (t == NULL)
        return NULL;
    for (int f = 0; f < 6; f++) {
        PyObject *v = f < 5 ? header_str(fields, bridge_headers[f]) : header_int(fields, bridge_headers[f], zero);
        if (v == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, f, v);
    }
    return t;
}

/* The typed event of a message whose kind has a spec, when every source is there; Py_None when not
 * (a snapshot the spec needs was not built: the Python decoder decides). New ref; NULL on error. */
static PyObject *
build_event(PyObject *fields, PyObject *name, PyObject *snap, PyObject *dest)
{
    if (spec_index == NULL || name == NULL)
        Py_RETURN_NONE;
    PyObject *index = PyDict_GetItemWithError(spec_index, name);
    if (index == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    event_spec *spec = &specs[PyLong_AsLong(index)];
    PyObject *values[MAX_EVENT_FIELDS];
    int n = 0;
    for (; n < spec->nfields; n++) {
        PyObject *v = NULL;
        switch (spec->source[n]) {
        case SRC_TS: {
            PyObject *raw = PyDict_GetItemWithError(fields, timestamp_header);
            if (raw == NULL) {
                if (PyErr_Occurred())
                    goto fail;
                v = Py_None;
                Py_INCREF(v);
            } else {
                v = PyFloat_FromString(raw); /* float(raw), as fields.timestamp */
                if (v == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
                    PyErr_Clear();
                    v = Py_None;
                    Py_INCREF(v);
                }
            }
            break;
        }
        case SRC_SNAP:
        case SRC_DEST:
            v = spec->source[n] == SRC_SNAP ? snap : dest;
            if (v == Py_None)
                goto give_up;
            Py_INCREF(v);
            break;
        case SRC_BRIDGE:
            v = build_bridge(fields);
            break;
        case SRC_STR:
            v = header_str(fields, spec->header[n]);
            break;
        case SRC_INT:
            v = header_int(fields, spec->header[n], zero);
            break;
        default: /* SRC_OPT_INT */
            v = header_int(fields, spec->header[n], Py_None);
            break;
        }
        if (v == NULL)
            goto fail;
        values[n] = v;
    }
    PyObject *ev = spec->cls->tp_alloc(spec->cls, 0);
    if (ev == NULL)
        goto fail;
    for (int f = 0; f < n; f++) /* the slots, as the dataclass __init__ would set them */
        SET_SLOT(ev, spec->offset[f], values[f]);
    return ev;
give_up:
    for (int f = 0; f < n; f++)
        Py_DECREF(values[f]);
    Py_RETURN_NONE;
fail:
    for (int f = 0; f < n; f++)
        Py_DECREF(values[f]);
    return NULL;
}

/* The finished message as an AmiMessage (or the decoded text of a message the Python readers must
 * read), appended to out. 1 appended a message, 2 appended a text, -1 error, 0 not UTF-8. */
static int
emit(message *m, PyObject *out, const unsigned char *s, Py_ssize_t start, Py_ssize_t end)
{
    if (m->fields == Py_None) {
        PyObject *text = PyUnicode_DecodeUTF8((const char *)s + start, end - start, NULL);
        if (text == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                return -1;
            PyErr_Clear();
            return 0;
        }
        int rc = PyList_Append(out, text);
        Py_DECREF(text);
        return rc < 0 ? -1 : 2;
    }
    PyObject *text;
    if (PyDict_GET_SIZE(m->fields) != m->lines) { /* a repeated name: keep the wire order */
        text = PyUnicode_DecodeUTF8((const char *)s + start, end - start, NULL);
        if (text == NULL)
            return -1; /* cannot fail: every value and name of it was decoded already */
    } else {
        Py_INCREF(empty);
        text = empty;
    }
    /* The snapshots only serve the typed event: the Python decoders read the dict themselves. */
    PyObject *snap = build_snapshot(m, 0);
    PyObject *dest = snap_prefixes > 1 && snap != NULL ? build_snapshot(m, 1) : (Py_INCREF(Py_None), Py_None);
    PyObject *event = NULL;
    if (snap != NULL && dest != NULL)
        event = m->kind == 1 ? build_event(m->fields, m->first, snap, dest) : (Py_INCREF(Py_None), Py_None);
    Py_XDECREF(snap);
    Py_XDECREF(dest);
    PyObject *msg = event != NULL ? msg_type->tp_alloc(msg_type, 0) : NULL;
    if (msg == NULL) {
        Py_DECREF(text);
        Py_XDECREF(event);
        return -1;
    }
    static PyObject *const *kinds[] = {&kind_other, &kind_event, &kind_response, &kind_action};
    PyObject *kind = *kinds[m->kind];
    Py_INCREF(kind);
    SET_SLOT(msg, off_fields, m->fields);
    SET_SLOT(msg, off_name, m->first != NULL ? m->first : (Py_INCREF(empty), empty));
    SET_SLOT(msg, off_kind, kind);
    SET_SLOT(msg, off_text, text);
    SET_SLOT(msg, off_event, event);
    m->fields = NULL; /* the message took these references */
    m->first = NULL;
    int rc = PyList_Append(out, msg);
    Py_DECREF(msg);
    return rc < 0 ? -1 : 1;
}

/* 1: run parsed into out (*texts counts its text items); 0: run irregular; -1: Python error set. */
static int
parse(const unsigned char *s, Py_ssize_t n, PyObject *out, Py_ssize_t *texts)
{
    if (s[0] == '\r' || s[0] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\n')
        return 0; /* padding at either end */
    message m;
    memset(&m, 0, sizeof m);
    Py_ssize_t pos = 0;
    int rc = 0;
    for (;;) {
        Py_ssize_t start = pos, line = pos, end = n, next = n;
        m.fields = _PyDict_NewPresized(24);
        if (m.fields == NULL)
            goto error;
        m.lines = 0;
        m.kind = 0;
        for (;;) {
            Py_ssize_t i = line;
            unsigned long hash = 2166136261UL;
            if (m.fields != Py_None) {
                while (i < n && name_byte[s[i]]) {
                    hash = (hash ^ (unsigned long)s[i]) * 16777619UL;
                    i++;
                }
                if (i == line || i + 1 >= n || s[i] != ':' || s[i + 1] != ' ') {
                    Py_DECREF(m.fields);
                    Py_INCREF(Py_None);
                    m.fields = Py_None; /* not a plain line: the Python readers take this message */
                    Py_CLEAR(m.first);
                }
            }
            Py_ssize_t value = i + 2, j = m.fields != Py_None ? value : line;
            unsigned char seen = 0;
            j = line_end(s, j, n, &seen);
            if (j < n && (s[j] == '\n' || j + 1 >= n || s[j + 1] != '\n'))
                goto irregular; /* a bare LF or CR: not a CRLF-only run */
            if (m.fields != Py_None) {
                int role;
                name_slot *slot;
                PyObject *k = name_of(s + line, i - line, hash, &role, &slot);
                if (k == NULL)
                    goto error;
                PyObject *v = make_value(s + value, j - value, seen, slot);
                if (v == NULL) {
                    Py_DECREF(k);
                    if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                        PyErr_Clear();
                        goto irregular; /* not UTF-8: the general path decides */
                    }
                    goto error;
                }
                if (PyDict_SetItem(m.fields, k, v) < 0) {
                    Py_DECREF(k);
                    Py_DECREF(v);
                    goto error;
                }
                m.lines++;
                if (line == start) {
                    Py_INCREF(v);
                    m.first = v;
                    Py_ssize_t len = i - line;
                    const char *c = (const char *)s + line;
                    m.kind = len == 5 && memcmp(c, "Event", 5) == 0      ? 1
                             : len == 8 && memcmp(c, "Response", 8) == 0 ? 2
                             : len == 6 && memcmp(c, "Action", 6) == 0   ? 3
                                                                         : 0;
                }
                if (role >= 0) {
                    int p = role / SNAP_FIELDS, f = role % SNAP_FIELDS;
                    Py_INCREF(v);
                    Py_XSETREF(m.snap[p][f], v); /* the last of a repeated name wins, as in the dict */
                    m.seen_mask[p] |= 1u << f;
                }
                Py_DECREF(k);
                Py_DECREF(v);
            }
            if (j >= n)
                break; /* the run's last line */
            if (j + 3 < n && s[j + 2] == '\r' && s[j + 3] == '\n') {
                if ((j + 4 < n && (s[j + 4] == '\r' || s[j + 4] == '\n')) || j == start)
                    goto irregular; /* two blank lines in a row */
                end = j;            /* a blank line: the message ends here */
                next = j + 4;
                break;
            }
            line = j + 2;
            if (s[line] == '\n')
                goto irregular; /* CR LF LF: a blank line the CRLF split would not see */
        }
        rc = emit(&m, out, s, start, end);
        if (rc < 0)
            goto error;
        if (rc == 0)
            goto irregular;
        if (rc == 2)
            (*texts)++;
        message_clear(&m);
        if (next >= n)
            return 1;
        pos = next;
    }
irregular:
    message_clear(&m);
    return 0;
error:
    message_clear(&m);
    return -1;
}

static PyObject *
parse_run(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t start, end;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "parse_run(buffer, start, end)");
        return NULL;
    }
    if (msg_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "parse_run() before configure()");
        return NULL;
    }
    start = PyLong_AsSsize_t(args[1]);
    end = PyLong_AsSsize_t(args[2]);
    if ((start == -1 || end == -1) && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (start < 0 || end > view.len || start > end) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "parse_run(): start/end outside the buffer");
        return NULL;
    }
    PyObject *out = NULL;
    if (end > start)
        out = PyList_New(0);
    if (out == NULL) {
        PyBuffer_Release(&view);
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    Py_ssize_t texts = 0;
    int rc = parse((const unsigned char *)view.buf + start, end - start, out, &texts);
    PyBuffer_Release(&view);
    if (rc <= 0) {
        Py_DECREF(out);
        if (rc < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *result = Py_BuildValue("(Nn)", out, texts);
    return result;
}

static int
slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *off)
{
    PyObject *key = PyUnicode_InternFromString(name);
    if (key == NULL)
        return -1;
    PyObject *d = _PyType_Lookup(type, key); /* borrowed; along the MRO */
    Py_DECREF(key);
    if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type) ||
        ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "configure(): %s has no object slot %s", type->tp_name, name);
        return -1;
    }
    *off = ((PyMemberDescrObject *)d)->d_member->offset;
    return 0;
}

/* configure_event(name, cls, fields): parse_run builds cls itself for events called `name`. fields:
 * (slot, source, header) per field of cls, every slot of it in any order; source is one of "ts",
 * "snap", "dest", "bridge", "str", "int", "opt_int" (see build_event), header the header name for
 * the last three. Decoders fall back to the dict when an event was not built. */
static PyObject *
configure_event(PyObject *module, PyObject *args)
{
    PyObject *name, *cls, *fields;
    if (!PyArg_ParseTuple(args, "UO!O!", &name, &PyType_Type, &cls, &PyTuple_Type, &fields))
        return NULL;
    if (PyTuple_GET_SIZE(fields) > MAX_EVENT_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "configure_event(): too many events or fields");
        return NULL;
    }
    static const char *sources[] = {"ts", "snap", "dest", "bridge", "str", "int", "opt_int"};
    event_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.nfields = (int)PyTuple_GET_SIZE(fields);
    for (int f = 0; f < spec.nfields; f++) {
        const char *slot, *source;
        PyObject *header;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(fields, f), "ssO", &slot, &source, &header))
            return NULL;
        if (slot_offset((PyTypeObject *)cls, slot, &spec.offset[f]) < 0)
            return NULL;
        spec.source[f] = -1;
        for (int k = 0; k < 7; k++)
            if (strcmp(source, sources[k]) == 0)
                spec.source[f] = k;
        if (spec.source[f] < 0 || (spec.source[f] >= SRC_STR && !PyUnicode_Check(header))) {
            PyErr_Format(PyExc_ValueError, "configure_event(): bad source %s for %s", source, slot);
            return NULL;
        }
        if (spec.source[f] == SRC_BRIDGE && bridge_type == NULL) {
            PyErr_SetString(PyExc_ValueError, "configure_event(): bridge source before configure_bridge()");
            return NULL;
        }
    }
    if (spec_index == NULL && (spec_index = PyDict_New()) == NULL)
        return NULL;
    PyObject *known = PyDict_GetItemWithError(spec_index, name); /* configured again: replaced */
    if (known == NULL && PyErr_Occurred())
        return NULL;
    int at = known != NULL ? (int)PyLong_AsLong(known) : nspecs;
    if (at >= MAX_EVENTS) {
        PyErr_SetString(PyExc_ValueError, "configure_event(): too many event kinds");
        return NULL;
    }
    if (known == NULL) {
        PyObject *index = PyLong_FromLong(at);
        if (index == NULL || PyDict_SetItem(spec_index, name, index) < 0) {
            Py_XDECREF(index);
            return NULL;
        }
        Py_DECREF(index);
        nspecs++;
    } else {
        Py_CLEAR(specs[at].cls);
        for (int f = 0; f < MAX_EVENT_FIELDS; f++)
            Py_CLEAR(specs[at].header[f]);
    }
    for (int f = 0; f < spec.nfields; f++)
        if (spec.source[f] >= SRC_STR) {
            PyObject *h = PyTuple_GET_ITEM(PyTuple_GET_ITEM(fields, f), 2);
            Py_INCREF(h);
            PyUnicode_InternInPlace(&h);
            spec.header[f] = h;
        }
    Py_INCREF(cls);
    spec.cls = (PyTypeObject *)cls;
    specs[at] = spec;
    Py_RETURN_NONE;
}

/* configure_bridge(bridge_type, headers): the bridge snapshot of the "bridge" source: bridge_type of
 * the six headers' values, "" when missing, the last one read as a number (0 when not one). */
static PyObject *
configure_bridge(PyObject *module, PyObject *args)
{
    PyObject *type, *headers;
    if (!PyArg_ParseTuple(args, "O!O!", &PyType_Type, &type, &PyTuple_Type, &headers))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type) || PyTuple_GET_SIZE(headers) != 6) {
        PyErr_SetString(PyExc_ValueError, "configure_bridge(): a tuple type and 6 header names");
        return NULL;
    }
    for (int f = 0; f < 6; f++) {
        PyObject *h = PyTuple_GET_ITEM(headers, f);
        if (!PyUnicode_Check(h)) {
            PyErr_SetString(PyExc_TypeError, "configure_bridge(): header names are str");
            return NULL;
        }
        Py_INCREF(h);
        PyUnicode_InternInPlace(&h);
        Py_XSETREF(bridge_headers[f], h);
    }
    Py_INCREF(type);
    Py_XSETREF(bridge_type, (PyTypeObject *)type);
    Py_RETURN_NONE;
}

/* configure(message_type): the AmiMessage class whose instances parse_run builds; its slots
 * _fields, _name, _kind, _text and typed_event are filled, _headers is left unset. */
static PyObject *
configure(PyObject *module, PyObject *type)
{
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "configure() expects the message class");
        return NULL;
    }
    PyTypeObject *t = (PyTypeObject *)type;
    if (slot_offset(t, "_fields", &off_fields) < 0 || slot_offset(t, "_name", &off_name) < 0 ||
        slot_offset(t, "_kind", &off_kind) < 0 || slot_offset(t, "_text", &off_text) < 0 ||
        slot_offset(t, "typed_event", &off_event) < 0)
        return NULL;
    Py_INCREF(type);
    Py_XSETREF(msg_type, t);
    Py_RETURN_NONE;
}

/* configure_snapshots(snapshot_type, field_names, prefixes, unknown_fields): parse_run builds
 * snapshot_type(*values) of the fields prefix + name for each prefix (at most 2, 12 fields), "" in
 * place of "<unknown>" for the fields whose indexes are in unknown_fields. */
static PyObject *
configure_snapshots(PyObject *module, PyObject *args)
{
    PyObject *type, *fields, *prefixes, *unknown;
    if (!PyArg_ParseTuple(args, "O!O!O!O!", &PyType_Type, &type, &PyTuple_Type, &fields, &PyTuple_Type, &prefixes,
                          &PyTuple_Type, &unknown))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type) || PyTuple_GET_SIZE(fields) != SNAP_FIELDS ||
        PyTuple_GET_SIZE(prefixes) > SNAP_PREFIXES) {
        PyErr_SetString(PyExc_ValueError, "configure_snapshots(): a tuple type, 12 fields, at most 2 prefixes");
        return NULL;
    }
    unsigned int mask = 0;
    for (Py_ssize_t u = 0; u < PyTuple_GET_SIZE(unknown); u++) {
        long f = PyLong_AsLong(PyTuple_GET_ITEM(unknown, u));
        if (f < 0 || f >= SNAP_FIELDS) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "configure_snapshots(): unknown field index out of range");
            return NULL;
        }
        mask |= 1u << f;
    }
    int np = (int)PyTuple_GET_SIZE(prefixes);
    for (int p = 0; p < np; p++) {
        Py_ssize_t plen;
        const char *prefix = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(prefixes, p), &plen);
        if (prefix == NULL)
            return NULL;
        for (int f = 0; f < SNAP_FIELDS; f++) {
            Py_ssize_t flen;
            const char *field = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(fields, f), &flen);
            if (field == NULL)
                return NULL;
            if (plen + flen > NAME_MAX_LEN) {
                PyErr_SetString(PyExc_ValueError, "configure_snapshots(): field name too long");
                return NULL;
            }
            memcpy(snap_names[p][f], prefix, (size_t)plen);
            memcpy(snap_names[p][f] + plen, field, (size_t)flen);
            snap_lens[p][f] = plen + flen;
        }
    }
    snap_prefixes = np;
    unknown_mask = mask;
    Py_INCREF(type);
    Py_XSETREF(snap_type, (PyTypeObject *)type);
    for (int k = 0; k < NAME_SLOTS; k++) /* names seen before now get their roles */
        if (names[k].len)
            names[k].role = role_of(names[k].chars, names[k].len);
    Py_RETURN_NONE;
}

/* value_cache_watch(name) -> (tries, hits, skip): how the values of header *name* fare in the value
 * cache (see cache_on()), or None for a name not seen (or not cached). For tests and for a look inside. */
static PyObject *
value_cache_watch(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(arg, &len);
    if (s == NULL)
        return NULL;
    for (int k = 0; k < NAME_SLOTS; k++) {
        name_slot *slot = &names[k];
        if (slot->len == len && memcmp(slot->chars, s, (size_t)len) == 0)
            return Py_BuildValue("(III)", slot->tries, slot->hits, slot->skip);
    }
    Py_RETURN_NONE;
}

/* value_cache_clear(): every cached value and header name dropped, as at import (a name is cached again
 * when it next comes, with its role and a fresh watch). For tests that look at which str objects values
 * are: what earlier runs taught the caches (or a name table filled by fuzzing) must not decide it. */
static PyObject *
value_cache_clear(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    for (int k = 0; k < VALUE_SETS; k++)
        for (int w = 0; w < 2; w++) {
            values[k].hash[w] = 0;
            Py_CLEAR(values[k].str[w]);
        }
    for (int k = 0; k < NAME_SLOTS; k++) {
        Py_CLEAR(names[k].name);
        memset(&names[k], 0, sizeof names[k]);
    }
    names_used = 0;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"value_cache_watch", value_cache_watch, METH_O,
     "value_cache_watch(name) -> (tries, hits, skip) of a header's values in the value cache, or None."},
    {"value_cache_clear", value_cache_clear, METH_NOARGS,
     "value_cache_clear(): drop the cached values and header names."},
    {"parse_run", (PyCFunction)(void (*)(void))parse_run, METH_FASTCALL,
     "parse_run(buffer, start, end) -> (items, texts), or None when the run is irregular or not UTF-8."},
    {"configure", configure, METH_O, "configure(message_type): the AmiMessage class parse_run builds."},
    {"configure_snapshots", configure_snapshots, METH_VARARGS,
     "configure_snapshots(snapshot_type, field_names, prefixes, unknown_fields)."},
    {"configure_event", configure_event, METH_VARARGS, "configure_event(name, cls, ((slot, source, header), ...))."},
    {"configure_bridge", configure_bridge, METH_VARARGS, "configure_bridge(bridge_type, header_names)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "callbridge.ami.fast._fastframe", "AMI framing inner loop in C (optional).", -1, methods,
};

PyMODINIT_FUNC
PyInit__fastframe(void)
{
    kind_event = PyUnicode_InternFromString("event");
    kind_response = PyUnicode_InternFromString("response");
    kind_action = PyUnicode_InternFromString("action");
    kind_other = PyUnicode_InternFromString("other");
    for (int c = 0x21; c < 0x7f; c++)
        name_byte[c] = c != ':';
    empty = PyUnicode_New(0, 0);
    zero = PyLong_FromLong(0);
    timestamp_header = PyUnicode_InternFromString("Timestamp");
    if (zero == NULL || timestamp_header == NULL)
        return NULL;
    if (kind_event == NULL || kind_response == NULL || kind_action == NULL || kind_other == NULL || empty == NULL)
        return NULL;
    return PyModule_Create(&module);
}
