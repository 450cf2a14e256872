/* The extension module modelplane.router.policy._piiscan: find() and detect(), as pii.py's
 * find_pii and detect_pii, over one text. */
#include "piiscan.h"

#include <string.h>

int scan_hit(Scan *scan, enum pii_type type, PyObject *value)
{
    if (value == NULL) {
        return -1;
    }
    scan->found_mask |= 1u << type;
    if (scan->detect_mode) {
        scan->wanted[type] = false;
        Py_DECREF(value);
        return 0;
    }
    PyObject *hit = Py_BuildValue("(iN)", (int)type, value);
    if (hit == NULL) {
        return -1;
    }
    int appended = PyList_Append(scan->hits, hit);
    Py_DECREF(hit);
    return appended;
}

int scan_hit_slice(Scan *scan, enum pii_type type, Py_ssize_t start, Py_ssize_t end)
{
    if (scan->detect_mode) {
        /* detect() reports types only: no value is built. */
        return scan_hit(scan, type, Py_NewRef(Py_None));
    }
    return scan_hit(scan, type, PyUnicode_Substring(scan->text, start, end));
}

PyObject *scan_ascii_string(const char *chars, Py_ssize_t length)
{
    return PyUnicode_DecodeASCII(chars, length, NULL);
}

bool scan_wants_numeric(const Scan *scan)
{
    return scan->wanted[PII_PHONE] || scan->wanted[PII_PAYMENT_CARD] || scan->wanted[PII_IBAN]
           || scan->wanted[PII_US_SSN] || scan->wanted[PII_IP_ADDRESS];
}

static bool wants_anything(const Scan *scan)
{
    return scan_wants_numeric(scan) || scan->wanted[PII_EMAIL] || scan->wanted[PII_CREDENTIAL];
}

static bool text_contains(const Scan *scan, char needle)
{
    return memchr(scan->ascii, needle, (size_t)scan->length) != NULL;
}

/* pii._iter_pii. The scanners stop early themselves when detect mode leaves their type
 * unwanted; the whole scan stops once nothing is wanted (detect_pii's last break). */
static int run_scan(Scan *scan)
{
    if (scan->wanted[PII_EMAIL] && text_contains(scan, '@') && pii_scan_email(scan) < 0) {
        return -1;
    }
    if (!wants_anything(scan)) {
        return 0;
    }
    if (scan->wanted[PII_CREDENTIAL] && pii_scan_credentials(scan) < 0) {
        return -1;
    }
    if (!wants_anything(scan)) {
        return 0;
    }
    if (scan->wanted[PII_IP_ADDRESS] && text_contains(scan, ':') && pii_scan_ipv6(scan) < 0) {
        return -1;
    }
    if (scan_wants_numeric(scan) && pii_scan_numeric(scan) < 0) {
        return -1;
    }
    return 0;
}

/* One byte per character, as text.encode("ascii", "replace"). */
static unsigned char *ascii_view(PyObject *text, int kind, const void *data, Py_ssize_t length)
{
    unsigned char *ascii = PyMem_Malloc((size_t)length + 1);
    if (ascii == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (PyUnicode_IS_ASCII(text)) {
        memcpy(ascii, data, (size_t)length);
    } else {
        for (Py_ssize_t index = 0; index < length; index++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, index);
            ascii[index] = c < 128 ? (unsigned char)c : '?';
        }
    }
    ascii[length] = '\0';
    return ascii;
}

static int scan_text(Scan *scan, PyObject *args, bool detect_mode)
{
    PyObject *text;
    unsigned int wanted_mask;
    if (!PyArg_ParseTuple(args, "UIOO", &text, &wanted_mask, &scan->is_jwt, &scan->is_ipv6)) {
        return -1;
    }
    scan->text = text;
    scan->kind = PyUnicode_KIND(text);
    scan->data = PyUnicode_DATA(text);
    scan->length = PyUnicode_GET_LENGTH(text);
    for (int type = 0; type < PII_TYPE_COUNT; type++) {
        scan->wanted[type] = (wanted_mask >> type) & 1u;
    }
    scan->detect_mode = detect_mode;
    scan->found_mask = 0;
    unsigned char *ascii = ascii_view(text, scan->kind, scan->data, scan->length);
    if (ascii == NULL) {
        return -1;
    }
    scan->ascii = ascii;
    int result = run_scan(scan);
    PyMem_Free(ascii);
    return result;
}

static PyObject *find(PyObject *Py_UNUSED(module), PyObject *args)
{
    Scan scan = {0};
    scan.hits = PyList_New(0);
    if (scan.hits == NULL) {
        return NULL;
    }
    if (scan_text(&scan, args, false) < 0) {
        Py_DECREF(scan.hits);
        return NULL;
    }
    return scan.hits;
}

static PyObject *detect(PyObject *Py_UNUSED(module), PyObject *args)
{
    Scan scan = {0};
    if (scan_text(&scan, args, true) < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLong(scan.found_mask);
}

static PyMethodDef methods[] = {
    {"find", find, METH_VARARGS,
     "find(text, wanted_mask, is_jwt, is_ipv6) -> list of (type index, value): every hit."},
    {"detect", detect, METH_VARARGS,
     "detect(text, wanted_mask, is_jwt, is_ipv6) -> mask of the types present."},
    {NULL, NULL, 0, NULL},
};

/* TYPES names the type of each index, so pii.py maps indices by name, not by a second list. */
static int add_type_names(PyObject *module)
{
    PyObject *names = Py_BuildValue(
        "(sssssss)", "email", "phone", "payment_card", "iban", "us_ssn", "ip_address", "credential");
    if (names == NULL) {
        return -1;
    }
    int added = PyModule_AddObjectRef(module, "TYPES", names);
    Py_DECREF(names);
    return added;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, add_type_names},
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "modelplane.router.policy._piiscan",
    .m_doc = "Native PII scanner; router/policy/pii.py is its reference and fallback.",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC PyInit__piiscan(void)
{
    return PyModuleDef_Init(&module);
}
