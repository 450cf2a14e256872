/* The native PII scanner: the same detectors as router/policy/pii.py, hit for hit.
 *
 * pii.py is the reference: every function here mirrors one there (named in a comment), and
 * tests/unit/router/policy/test_pii_native.py checks both give the same hits on generated texts.
 * The text is read as Python sees it (code points, Python's Unicode character classes), so
 * positions and values are those of the Python scanner.
 */
#ifndef MODELPLANE_PIISCAN_H
#define MODELPLANE_PIISCAN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>

/* The order of PiiType's members in router/policy/types.py. */
enum pii_type {
    PII_EMAIL,
    PII_PHONE,
    PII_PAYMENT_CARD,
    PII_IBAN,
    PII_US_SSN,
    PII_IP_ADDRESS,
    PII_CREDENTIAL,
    PII_TYPE_COUNT
};

typedef struct {
    /* The text, read with PyUnicode_READ(kind, data, index). */
    PyObject *text;
    int kind;
    const void *data;
    Py_ssize_t length;
    /* One byte per character: the character if ASCII, else '?' (text.encode("ascii", "replace")). */
    const unsigned char *ascii;
    /* Python callables for rare, exactness-critical checks: pii.is_jwt and pii.is_ipv6. */
    PyObject *is_jwt;
    PyObject *is_ipv6;
    /* The types still looked for. In detect mode a type stops being wanted at its first hit, as
     * detect_pii discards it from `_Wanted`; in find mode every hit is kept. */
    bool wanted[PII_TYPE_COUNT];
    bool detect_mode;
    unsigned found_mask;
    /* (type index, value) tuples, in the order pii._iter_pii yields them. */
    PyObject *hits;
} Scan;

static inline Py_UCS4 scan_char(const Scan *scan, Py_ssize_t index)
{
    /* Outside the text there is "nothing", which behaves like a space (pii._char_at/_char_before). */
    if (index < 0 || index >= scan->length) {
        return ' ';
    }
    return PyUnicode_READ(scan->kind, scan->data, index);
}

/* pii._is_word_char: str.isalnum() or "_". */
static inline bool is_word_char(Py_UCS4 c)
{
    return c == '_' || Py_UNICODE_ISALNUM(c);
}

static inline bool is_ascii_digit(Py_UCS4 c) { return c >= '0' && c <= '9'; }

/* Record a hit; `value` is a new reference, consumed (also on error). 0 on success, -1 with a
 * Python exception set. */
int scan_hit(Scan *scan, enum pii_type type, PyObject *value);
/* Record text[start:end] as a hit. */
int scan_hit_slice(Scan *scan, enum pii_type type, Py_ssize_t start, Py_ssize_t end);
/* A str from ASCII bytes (values assembled from digit groups, such as "+442079460958"). */
PyObject *scan_ascii_string(const char *chars, Py_ssize_t length);

bool scan_wants_numeric(const Scan *scan);

/* The scanners, in pii._iter_pii's order. Each returns 0, or -1 with a Python exception set. */
int pii_scan_email(Scan *scan);        /* pii._scan_email; only called when "@" is in the text */
int pii_scan_credentials(Scan *scan);  /* pii._scan_credentials */
int pii_scan_ipv6(Scan *scan);         /* pii._scan_ipv6; only called when ":" is in the text */
int pii_scan_numeric(Scan *scan);      /* pii._scan_numeric */

#endif
