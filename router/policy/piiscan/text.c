/* Textual PII: e-mail (pii._scan_email), credentials (pii._scan_credentials) and IPv6
 * (pii._scan_ipv6).
 *
 * pii.py finds these with regular expressions; here each pattern is matched by hand, with the
 * backtracking of Python's engine worked out once per pattern (the comment at each matcher says
 * why the hand-written match is the one re would find). Every class below is ASCII, so the
 * one-byte-per-character view `scan->ascii` serves, where non-ASCII characters read as "?".
 */
#include "piiscan.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The character classes of pii.py's patterns, as bit flags:
 *   CLASS_TOKEN       _TOKEN_CHARS, also _ASSIGNED_VALUE's [A-Za-z0-9/+_\-.~=!@#$%^&*]
 *   CLASS_EMAIL_ATOM  _EMAIL_ATOM: A-Za-z0-9!#$%&'*+/=?^_`{|}~.-
 *   CLASS_IDENTIFIER  _IDENTIFIER_TAIL: A-Za-z0-9_.-
 *   CLASS_HEX         0-9A-Fa-f
 *   CLASS_BASE64URL   A-Za-z0-9_-  (the OpenAI key body, JWT segments)
 *   CLASS_BEARER      A-Za-z0-9-._~+/
 *   CLASS_PEM_BODY    A-Za-z0-9+/=  (plus \s, tested separately: it is Unicode whitespace)
 *   CLASS_ALNUM       A-Za-z0-9 */
enum {
    CLASS_TOKEN = 0x01,
    CLASS_EMAIL_ATOM = 0x02,
    CLASS_IDENTIFIER = 0x04,
    CLASS_HEX = 0x08,
    CLASS_BASE64URL = 0x10,
    CLASS_BEARER = 0x20,
    CLASS_PEM_BODY = 0x40,
    CLASS_ALNUM = 0x80,
};

/* Each ASCII character's flags (the OR of the classes above it belongs to). */
static const unsigned char CHAR_CLASSES[128] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x03, 0x00, 0x03, 0x03, 0x03, 0x03, 0x02, 0x00, 0x00, 0x03, 0x63, 0x00, 0x37, 0x27, 0x63,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x43, 0x00, 0x02,
    0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7,
    0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0x00, 0x00, 0x00, 0x03, 0x37,
    0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7,
    0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0x02, 0x02, 0x02, 0x23, 0x00,
};

static inline bool has_class(unsigned char byte, unsigned char classes)
{
    return CHAR_CLASSES[byte & 0x7f] & classes;
}

static inline bool is_blank(unsigned char byte)
{
    return byte == ' ' || byte == '\t';
}

static inline Py_ssize_t min_index(Py_ssize_t a, Py_ssize_t b)
{
    return a < b ? a : b;
}

static inline bool is_ascii_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static inline bool ascii_at(const Scan *scan, Py_ssize_t index, char expected)
{
    return index >= 0 && index < scan->length && scan->ascii[index] == (unsigned char)expected;
}

/* Whether text[start:] starts with `literal` (ASCII, without "?"). */
static bool starts_with(const Scan *scan, Py_ssize_t start, const char *literal, Py_ssize_t length)
{
    return start >= 0 && start + length <= scan->length
           && memcmp(scan->ascii + start, literal, (size_t)length) == 0;
}

/* Below this many bytes a plain loop finds a literal sooner than memmem, whose set-up per call
 * costs more than reading a long token run. */
#define SHORT_HAYSTACK 256

/* The first index >= from where `literal` starts and ends by `to`, or -1. */
static Py_ssize_t find_literal(const unsigned char *bytes, Py_ssize_t from, Py_ssize_t to,
                               const char *literal, Py_ssize_t length)
{
    if (from < 0) {
        from = 0;
    }
    if (to - from < length) {
        return -1;
    }
    if (to - from >= SHORT_HAYSTACK) {
        const unsigned char *found =
            memmem(bytes + from, (size_t)(to - from), literal, (size_t)length);
        return found == NULL ? -1 : found - bytes;
    }
    const unsigned char first = (unsigned char)literal[0];
    for (Py_ssize_t index = from; index + length <= to; index++) {
        if (bytes[index] == first
            && memcmp(bytes + index + 1, literal + 1, (size_t)(length - 1)) == 0) {
            return index;
        }
    }
    return -1;
}

/* The length of the run of `classes` characters from `start`, counting at most `limit`. */
static Py_ssize_t class_run(const Scan *scan, Py_ssize_t start, Py_ssize_t limit,
                            unsigned char classes)
{
    Py_ssize_t end = min_index(start + limit, scan->length);
    Py_ssize_t index = start;
    while (index < end && has_class(scan->ascii[index], classes)) {
        index++;
    }
    return index - start;
}

static inline bool is_space_at(const Scan *scan, Py_ssize_t index)
{
    return index < scan->length
           && Py_UNICODE_ISSPACE(PyUnicode_READ(scan->kind, scan->data, index));
}

/* Call pii.is_jwt / pii.is_ipv6 on text[start:end]: 1, 0, or -1 with an exception set. */
static int python_check(const Scan *scan, PyObject *check, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *value = PyUnicode_Substring(scan->text, start, end);
    if (value == NULL) {
        return -1;
    }
    PyObject *result = PyObject_CallOneArg(check, value);
    Py_DECREF(value);
    if (result == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(result);
    Py_DECREF(result);
    return truth;
}

/* ------------------------------------------------------------------------------ random values */

#define MIN_SECRET_BITS_PER_CHAR 3.0

/* pii._least_bits_per_char, with Python's float operations in Python's order. */
static double least_bits_per_char(Py_ssize_t length, Py_ssize_t distinct)
{
    Py_ssize_t repeated = length - distinct + 1;
    return log2((double)length) - (double)repeated * log2((double)repeated) / (double)length;
}

/* pii._looks_random over an ASCII value (every caller's value is made of ASCII classes).
 * The Shannon sum adds c * log2(c) in the order Counter holds the characters (first
 * occurrence), left to right as Python 3.11's sum() does, so the threshold compares the same. */
static bool looks_random(const unsigned char *value, Py_ssize_t length, Py_ssize_t min_length)
{
    if (length < min_length) {
        return false;
    }
    Py_ssize_t counts[128] = {0};
    unsigned char first_seen[128];
    Py_ssize_t distinct = 0;
    bool has_digit = false, has_lower = false, has_upper = false;
    for (Py_ssize_t index = 0; index < length; index++) {
        unsigned char c = value[index] & 0x7f;
        has_digit |= c >= '0' && c <= '9';
        has_lower |= c >= 'a' && c <= 'z';
        has_upper |= c >= 'A' && c <= 'Z';
        if (counts[c]++ == 0) {
            first_seen[distinct++] = c;
        }
    }
    /* any(isdigit) + (upper() != value) + (lower() != value) */
    if ((int)has_digit + (int)has_lower + (int)has_upper < 2) {
        return false;
    }
    if (least_bits_per_char(length, distinct) >= MIN_SECRET_BITS_PER_CHAR) {
        return true;
    }
    double weighted = 0.0;
    for (Py_ssize_t index = 0; index < distinct; index++) {
        double count = (double)counts[first_seen[index]];
        weighted += count * log2(count);
    }
    return log2((double)length) - weighted / (double)length >= MIN_SECRET_BITS_PER_CHAR;
}

/* pii._bounded */
static bool bounded(const Scan *scan, Py_ssize_t start, Py_ssize_t end)
{
    Py_UCS4 before = scan_char(scan, start - 1);
    Py_UCS4 after = scan_char(scan, end);
    return !(is_word_char(before) || before == '-') && !(is_word_char(after) || after == '-');
}

/* ------------------------------------------------------------------------------------ e-mail */

#define EMAIL_LOCAL_MAX 64
#define EMAIL_MAX_DOMAIN 253
/* A label is at least one character and a dot, so a domain of 253 characters has fewer. */
#define EMAIL_MAX_LABELS (EMAIL_MAX_DOMAIN / 2 + 1)

static inline bool is_email_atom(const Scan *scan, Py_ssize_t index)
{
    unsigned char byte = scan->ascii[index];
    if (byte == '?') {
        return PyUnicode_READ(scan->kind, scan->data, index) == '?';
    }
    return has_class(byte, CLASS_EMAIL_ATOM);
}

/* The length of an _EMAIL_DOMAIN label ([A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.) at
 * `start`, dot included, or 0. The label must be followed by a dot and holds none, so it is the
 * whole run of letters, digits and hyphens there: one way to match at most. */
static Py_ssize_t email_label(const Scan *scan, Py_ssize_t start, Py_ssize_t endpos)
{
    if (start >= endpos || !has_class(scan->ascii[start], CLASS_ALNUM)) {
        return 0;
    }
    Py_ssize_t end = start;
    while (end < endpos && (has_class(scan->ascii[end], CLASS_ALNUM) || scan->ascii[end] == '-')) {
        end++;
    }
    if (end >= endpos || scan->ascii[end] != '.' || end - start > 63
        || scan->ascii[end - 1] == '-') {
        return 0;
    }
    return end - start + 1;
}

/* _EMAIL_DOMAIN.match(text, start, endpos).end(), or -1. The engine takes as many labels as
 * follow each other, then gives them back one by one until [A-Za-z]{2,63} matches after them;
 * at least one label must stay. */
static Py_ssize_t email_domain_end(const Scan *scan, Py_ssize_t start, Py_ssize_t endpos)
{
    Py_ssize_t label_ends[EMAIL_MAX_LABELS + 1];
    Py_ssize_t labels = 0;
    Py_ssize_t position = start;
    for (;;) {
        Py_ssize_t label = email_label(scan, position, endpos);
        if (label == 0 || labels == EMAIL_MAX_LABELS) {
            break;
        }
        position += label;
        label_ends[labels++] = position;
    }
    for (Py_ssize_t kept = labels; kept >= 1; kept--) {
        Py_ssize_t top = label_ends[kept - 1];
        Py_ssize_t end = top;
        while (end < endpos && end - top < 63 && is_ascii_alpha(scan->ascii[end])) {
            end++;
        }
        if (end - top >= 2) {
            return end;
        }
    }
    return -1;
}

/* _IMAGE_SCALE_LABEL.match(domain): [0-9]+(?:\.[0-9]+)?x\. ignoring case, within the domain.
 * Digits run into a dot or an "x", so no shorter digit run can match where the longest fails. */
static bool image_scale_label(const Scan *scan, Py_ssize_t start, Py_ssize_t end)
{
    const unsigned char *ascii = scan->ascii;
    Py_ssize_t index = start;
    while (index < end && is_ascii_digit(ascii[index])) {
        index++;
    }
    if (index == start) {
        return false;
    }
    if (index + 1 < end && (ascii[index] | 0x20) == 'x' && ascii[index + 1] == '.') {
        return true;
    }
    if (index < end && ascii[index] == '.') {
        Py_ssize_t fraction = ++index;
        while (index < end && is_ascii_digit(ascii[index])) {
            index++;
        }
        return index > fraction && index + 1 < end && (ascii[index] | 0x20) == 'x'
               && ascii[index + 1] == '.';
    }
    return false;
}

/* pii._scan_email */
int pii_scan_email(Scan *scan)
{
    const unsigned char *ascii = scan->ascii;
    Py_ssize_t length = scan->length;
    const unsigned char *found = memchr(ascii, '@', (size_t)length);
    while (found != NULL) {
        Py_ssize_t at = found - ascii;
        Py_ssize_t window_start = at > EMAIL_LOCAL_MAX ? at - EMAIL_LOCAL_MAX : 0;
        /* _BEFORE_EMAIL_LOCAL: the local part starts after the last non-atom character. */
        Py_ssize_t local_start = window_start;
        for (Py_ssize_t index = at - 1; index >= window_start; index--) {
            if (!is_email_atom(scan, index)) {
                local_start = index + 1;
                break;
            }
        }
        Py_ssize_t endpos = min_index(at + 1 + EMAIL_MAX_DOMAIN, length);
        Py_ssize_t domain_end = local_start < at ? email_domain_end(scan, at + 1, endpos) : -1;
        if (domain_end >= 0) {
            while (local_start < at && ascii[local_start] == '.') {
                local_start++; /* local.lstrip(".") */
            }
            bool doubled_dot = false;
            for (Py_ssize_t index = local_start; index + 1 < at; index++) {
                if (ascii[index] == '.' && ascii[index + 1] == '.') {
                    doubled_dot = true;
                    break;
                }
            }
            Py_UCS4 after = scan_char(scan, domain_end);
            if (local_start < at && ascii[at - 1] != '.' && !doubled_dot
                && !(Py_UNICODE_ISALNUM(after) || after == '-' || after == '_' || after == '@')
                && !image_scale_label(scan, at + 1, domain_end)) {
                if (scan_hit_slice(scan, PII_EMAIL, local_start, domain_end) < 0) {
                    return -1;
                }
                if (!scan->wanted[PII_EMAIL]) {
                    return 0;
                }
            }
        }
        found = memchr(found + 1, '@', (size_t)(length - at - 1));
    }
    return 0;
}

/* ------------------------------------------------------------------------------- credentials */

#define LONG_TOKEN 16
#define OPERATOR_LOOKBACK 64

typedef struct {
    Py_ssize_t start;
    Py_ssize_t end;
} Span;

/* The spans of pii._long_token_runs, in a buffer that grows past the inline one. */
typedef struct {
    Span inline_spans[64];
    Span *spans;
    Py_ssize_t count;
    Py_ssize_t capacity;
} Runs;

static void runs_release(Runs *runs)
{
    if (runs->spans != runs->inline_spans) {
        PyMem_Free(runs->spans);
    }
}

static int runs_append(Runs *runs, Py_ssize_t start, Py_ssize_t end)
{
    if (runs->count == runs->capacity) {
        Py_ssize_t capacity = runs->capacity * 2;
        Span *grown = PyMem_Malloc((size_t)capacity * sizeof(Span));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(grown, runs->spans, (size_t)runs->count * sizeof(Span));
        runs_release(runs);
        runs->spans = grown;
        runs->capacity = capacity;
    }
    runs->spans[runs->count++] = (Span){start, end};
    return 0;
}

static inline bool is_token_byte(unsigned char byte)
{
    return has_class(byte, CLASS_TOKEN);
}

/* The offset of the last blank or control character (below "!") in the 16 bytes at `window`,
 * or -1, eight bytes at a time: for bytes below 0x80, (b | 0x80) - 0x21 keeps its high bit
 * exactly when b >= 0x21, and no byte borrows from its neighbour. */
static inline Py_ssize_t last_blank_in_window(const unsigned char *window)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t high_bits = 0x8080808080808080u, bangs = 0x2121212121212121u;
    uint64_t words[2];
    memcpy(words, window, sizeof words);
    for (int half = 1; half >= 0; half--) {
        uint64_t blanks = ~((words[half] | high_bits) - bangs) & high_bits;
        if (blanks) {
            return half * 8 + (63 - __builtin_clzll(blanks)) / 8;
        }
    }
    return -1;
#else
    for (Py_ssize_t index = LONG_TOKEN - 1; index >= 0; index--) {
        if (window[index] < '!') {
            return index;
        }
    }
    return -1;
#endif
}

/* pii._long_token_runs: the maximal runs of at least 16 token characters. Prose breaks words
 * every few characters, so each window of 16 is first tested for a blank at once, and else
 * read from its end backwards: the last non-token character met rules out every window
 * holding it, and the search jumps past it. */
static int long_token_runs(const Scan *scan, Runs *runs)
{
    const unsigned char *ascii = scan->ascii;
    Py_ssize_t length = scan->length;
    /* `start` follows a non-token character (or is 0): the start of any run found from it. */
    Py_ssize_t start = 0;
    while (start + LONG_TOKEN <= length) {
        Py_ssize_t blank = last_blank_in_window(ascii + start);
        if (blank >= 0) {
            start += blank + 1;
            continue;
        }
        Py_ssize_t index = start + LONG_TOKEN - 1;
        while (index >= start && is_token_byte(ascii[index])) {
            index--;
        }
        if (index >= start) {
            start = index + 1;
            continue;
        }
        Py_ssize_t end = start + LONG_TOKEN;
        while (end < length && is_token_byte(ascii[end])) {
            end++;
        }
        if (runs_append(runs, start, end) < 0) {
            return -1;
        }
        start = end + 1;
    }
    return 0;
}

/* A credential scanner over one long run: 0, or -1 with an exception set. It records its hits
 * and returns early once detect mode stops wanting credentials. */
typedef int (*RunScanner)(Scan *scan, Py_ssize_t start, Py_ssize_t end);

/* Record text[start:end] as a credential: 1 if credentials are still wanted, 0 if not, -1. */
static int credential_hit(Scan *scan, Py_ssize_t start, Py_ssize_t end)
{
    if (scan_hit_slice(scan, PII_CREDENTIAL, start, end) < 0) {
        return -1;
    }
    return scan->wanted[PII_CREDENTIAL] ? 1 : 0;
}

/* Every match of the token patterns below is made of token characters, so it lies inside one
 * long run (or is too short to be a hit), and finditer over the text finds in each run what
 * finditer from the run's start finds: each scanner walks the runs instead of the text. */

/* pii._scan_openai_keys: sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)[0-9]{2}-)?([A-Za-z0-9_\-]+)
 * Every prefix character is a body character, so the match always ends where the body run
 * from "sk-" ends; the prefix is kept only if at least one body character follows it
 * (otherwise the engine drops the optional prefix and the body starts after "sk-"). */
static Py_ssize_t openai_prefix(const Scan *scan, Py_ssize_t start)
{
    if (starts_with(scan, start, "proj-", 5)) {
        return 5;
    }
    if (starts_with(scan, start, "svcacct-", 8)) {
        return 8;
    }
    if (starts_with(scan, start, "admin-", 6)) {
        return 6;
    }
    if (starts_with(scan, start, "ant-", 4)) {
        Py_ssize_t kind = starts_with(scan, start + 4, "api", 3) ? 3
                          : starts_with(scan, start + 4, "admin", 5) ? 5
                                                                     : 0;
        Py_ssize_t digits = start + 4 + kind;
        if (kind && digits + 2 < scan->length && is_ascii_digit(scan->ascii[digits])
            && is_ascii_digit(scan->ascii[digits + 1]) && scan->ascii[digits + 2] == '-') {
            return 4 + kind + 3;
        }
    }
    return 0;
}

static int scan_openai_keys(Scan *scan, Py_ssize_t run_start, Py_ssize_t run_end)
{
    Py_ssize_t position = run_start;
    for (;;) {
        Py_ssize_t start = find_literal(scan->ascii, position, run_end, "sk-", 3);
        if (start < 0) {
            return 0;
        }
        Py_ssize_t after_sk = start + 3;
        Py_ssize_t end = after_sk + class_run(scan, after_sk, run_end - after_sk, CLASS_BASE64URL);
        if (end == after_sk) {
            position = start + 1;
            continue;
        }
        Py_ssize_t prefix = openai_prefix(scan, after_sk);
        Py_ssize_t body = prefix && after_sk + prefix < end ? after_sk + prefix : after_sk;
        if (bounded(scan, start, end) && looks_random(scan->ascii + body, end - body, 20)) {
            int more = credential_hit(scan, start, end);
            if (more <= 0) {
                return more;
            }
        }
        position = end;
    }
}

/* pii._scan_aws_keys: (?:AKIA|ASIA)[A-Z2-7]{16} */
static int scan_aws_keys(Scan *scan, Py_ssize_t run_start, Py_ssize_t run_end)
{
    const unsigned char *ascii = scan->ascii;
    Py_ssize_t position = run_start;
    for (;;) {
        Py_ssize_t found = find_literal(ascii, position + 2, run_end, "IA", 2);
        if (found < 0) {
            return 0;
        }
        Py_ssize_t start = found - 2;
        if (ascii[start] != 'A' || (ascii[start + 1] != 'K' && ascii[start + 1] != 'S')
            || start + 20 > run_end) {
            position = start + 1;
            continue;
        }
        Py_ssize_t index = start + 4;
        while (index < start + 20
               && ((ascii[index] >= 'A' && ascii[index] <= 'Z')
                   || (ascii[index] >= '2' && ascii[index] <= '7'))) {
            index++;
        }
        if (index < start + 20) {
            position = start + 1;
            continue;
        }
        if (bounded(scan, start, start + 20)) {
            int more = credential_hit(scan, start, start + 20);
            if (more <= 0) {
                return more;
            }
        }
        position = start + 20;
    }
}

/* pii._scan_github_tokens: gh[pousr]_[A-Za-z0-9]{36}, a fixed length, so at most one match
 * per "gh"; the body checked is the value without its first four characters. */
static int scan_github_tokens(Scan *scan, Py_ssize_t run_start, Py_ssize_t run_end)
{
    const unsigned char *ascii = scan->ascii;
    Py_ssize_t position = run_start;
    for (;;) {
        Py_ssize_t start = find_literal(ascii, position, run_end, "gh", 2);
        if (start < 0) {
            return 0;
        }
        unsigned char kind = start + 2 < run_end ? ascii[start + 2] : 0;
        if (!(kind && strchr("pousr", kind) != NULL && ascii_at(scan, start + 3, '_')
              && class_run(scan, start + 4, 36, CLASS_ALNUM) == 36)) {
            position = start + 1;
            continue;
        }
        Py_ssize_t end = start + 40;
        if (bounded(scan, start, end) && looks_random(ascii + start + 4, end - start - 4, 16)) {
            int more = credential_hit(scan, start, end);
            if (more <= 0) {
                return more;
            }
        }
        position = end;
    }
}

/* pii._scan_github_fine_grained_tokens: github_pat_[A-Za-z0-9_]{82}, a fixed length; the body
 * checked is the value without "github_pat_". */
static int scan_github_fine_grained_tokens(Scan *scan, Py_ssize_t run_start, Py_ssize_t run_end)
{
    const unsigned char *ascii = scan->ascii;
    Py_ssize_t position = run_start;
    for (;;) {
        Py_ssize_t start = find_literal(ascii, position, run_end, "github_pat_", 11);
        if (start < 0) {
            return 0;
        }
        Py_ssize_t index = start + 11;
        while (index < start + 93 && index < run_end
               && (has_class(ascii[index], CLASS_ALNUM) || ascii[index] == '_')) {
            index++;
        }
        if (index != start + 93) {
            position = start + 1;
            continue;
        }
        Py_ssize_t end = index;
        if (bounded(scan, start, end) && looks_random(ascii + start + 11, end - start - 11, 16)) {
            int more = credential_hit(scan, start, end);
            if (more <= 0) {
                return more;
            }
        }
        position = end;
    }
}

/* pii._scan_slack_tokens: xox[abposre]-[A-Za-z0-9\-]+, then its "-"-separated segments. */
static int scan_slack_tokens(Scan *scan, Py_ssize_t run_start, Py_ssize_t run_end)
{
    const unsigned char *ascii = scan->ascii;
    Py_ssize_t position = run_start;
    for (;;) {
        Py_ssize_t start = find_literal(ascii, position, run_end, "xox", 3);
        if (start < 0) {
            return 0;
        }
        unsigned char kind = start + 3 < run_end ? ascii[start + 3] : 0;
        Py_ssize_t body = start + 5;
        Py_ssize_t end = body;
        if (kind && strchr("abposre", kind) != NULL && ascii_at(scan, start + 4, '-')) {
            while (end < run_end && (has_class(ascii[end], CLASS_ALNUM) || ascii[end] == '-')) {
                end++;
            }
        }
        if (end == body) {
            position = start + 1;
            continue;
        }
        /* segments = value[5:].split("-") */
        Py_ssize_t first_end = body;
        while (first_end < end && ascii[first_end] != '-') {
            first_end++;
        }
        Py_ssize_t last_start = end;
        while (last_start > body && ascii[last_start - 1] != '-') {
            last_start--;
        }
        Py_ssize_t dashes = 0;
        for (Py_ssize_t index = body; index < end; index++) {
            dashes += ascii[index] == '-';
        }
        bool first_is_digits = first_end > body;
        for (Py_ssize_t index = body; index < first_end; index++) {
            first_is_digits &= is_ascii_digit(ascii[index]);
        }
        /* The last segment holds no "-", so it is alphanumeric whenever it is not empty. */
        if (bounded(scan, start, end) && dashes >= 2 && first_is_digits && first_end - body >= 6
            && end - last_start >= 16) {
            int more = credential_hit(scan, start, end);
            if (more <= 0) {
                return more;
            }
        }
        position = end;
    }
}

/* pii._scan_bearer_tokens over the whole text: [Bb]earer[ \t]+([A-Za-z0-9\-._~+/]+=*). The
 * blanks and the token are maximal runs of disjoint classes, so nothing backtracks. */
static int scan_bearer_tokens(Scan *scan)
{
    const unsigned char *ascii = scan->ascii;
    Py_ssize_t length = scan->length;
    Py_ssize_t position = 0;
    for (;;) {
        Py_ssize_t found = find_literal(ascii, position + 1, length, "earer", 5);
        if (found < 0) {
            return 0;
        }
        Py_ssize_t start = found - 1;
        if (ascii[start] != 'B' && ascii[start] != 'b') {
            position = start + 1;
            continue;
        }
        Py_ssize_t token = found + 5;
        while (token < length && is_blank(ascii[token])) {
            token++;
        }
        Py_ssize_t end = token + class_run(scan, token, length - token, CLASS_BEARER);
        if (token == found + 5 || end == token) {
            position = start + 1;
            continue;
        }
        while (end < length && ascii[end] == '=') {
            end++;
        }
        if (!is_word_char(scan_char(scan, start - 1))
            && looks_random(ascii + token, end - token, 16)) {
            int more = credential_hit(scan, start, end);
            if (more <= 0) {
                return more;
            }
        }
        position = end;
    }
}

/* pii._scan_jwts: eyJ[A-Za-z0-9_\-]{1,1024}\.eyJ[A-Za-z0-9_\-]{1,16384}\.[A-Za-z0-9_\-]{16,1024}
 * A dot never belongs to a segment, so each segment is its whole run (too long a run fails);
 * the last is cut at 1,024 characters, and then a token character follows, which _bounded
 * rejects before is_jwt is asked. */
static Py_ssize_t jwt_segment(const Scan *scan, Py_ssize_t start, Py_ssize_t longest)
{
    Py_ssize_t run = class_run(scan, start, longest + 1, CLASS_BASE64URL);
    return run <= longest ? run : 0;
}

static int scan_jwts(Scan *scan, Py_ssize_t run_start, Py_ssize_t run_end)
{
    Py_ssize_t position = run_start;
    for (;;) {
        Py_ssize_t start = find_literal(scan->ascii, position, run_end, "eyJ", 3);
        if (start < 0) {
            return 0;
        }
        Py_ssize_t header = jwt_segment(scan, start + 3, 1024);
        Py_ssize_t payload_start = start + 3 + header + 1;
        Py_ssize_t end = -1;
        if (header && ascii_at(scan, payload_start - 1, '.')
            && starts_with(scan, payload_start, "eyJ", 3)) {
            Py_ssize_t payload = jwt_segment(scan, payload_start + 3, 16384);
            Py_ssize_t signature_start = payload_start + 3 + payload + 1;
            if (payload && ascii_at(scan, signature_start - 1, '.')) {
                Py_ssize_t signature = class_run(scan, signature_start, 1024, CLASS_BASE64URL);
                end = signature >= 16 ? signature_start + signature : -1;
            }
        }
        if (end < 0) {
            position = start + 1;
            continue;
        }
        if (bounded(scan, start, end)) {
            int is_jwt = python_check(scan, scan->is_jwt, start, end);
            if (is_jwt < 0) {
                return -1;
            }
            if (is_jwt) {
                int more = credential_hit(scan, start, end);
                if (more <= 0) {
                    return more;
                }
            }
        }
        position = end;
    }
}

/* The end of the header of _PEM_PRIVATE_KEY after "-----BEGIN " at `start`:
 * (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?----- , or -1. The words before "PRIVATE KEY" are taken
 * greedily and given back one by one; "PRIVATE" and "KEY" are words themselves when a space
 * follows, so only one number of words can leave "PRIVATE KEY-----" or "PRIVATE KEY
 * BLOCK-----" next, and the first one found going forward is the one the engine settles on. */
static Py_ssize_t pem_header_end(const Scan *scan, Py_ssize_t start)
{
    Py_ssize_t word = start;
    for (;;) {
        if (starts_with(scan, word, "PRIVATE KEY", 11)) {
            Py_ssize_t after = word + 11;
            if (starts_with(scan, after, " BLOCK", 6)) {
                after += 6;
            }
            if (starts_with(scan, after, "-----", 5)) {
                return after + 5;
            }
        }
        Py_ssize_t end = word;
        while (end < scan->length
               && ((scan->ascii[end] >= 'A' && scan->ascii[end] <= 'Z')
                   || is_ascii_digit(scan->ascii[end]))) {
            end++;
        }
        if (end == word || !ascii_at(scan, end, ' ')) {
            return -1;
        }
        word = end + 1;
    }
}

#define PEM_MIN_BODY 40
#define PEM_MAX_BODY 16384

/* The body run [A-Za-z0-9+/=\s] from `start`, counting at most PEM_MAX_BODY. */
static Py_ssize_t pem_body_run(const Scan *scan, Py_ssize_t start)
{
    Py_ssize_t end = min_index(start + PEM_MAX_BODY, scan->length);
    Py_ssize_t index = start;
    while (index < end
           && (has_class(scan->ascii[index], CLASS_PEM_BODY) || is_space_at(scan, index))) {
        index++;
    }
    return index - start;
}

static Py_ssize_t space_run(const Scan *scan, Py_ssize_t start)
{
    Py_ssize_t index = start;
    while (is_space_at(scan, index)) {
        index++;
    }
    return index - start;
}

/* A header line of _PEM_PRIVATE_KEY at `start`, [A-Za-z\-]+:[^\n]*\n, without its trailing
 * \s*: its end, or -1. */
static Py_ssize_t pem_header_line_end(const Scan *scan, Py_ssize_t start)
{
    Py_ssize_t index = start;
    while (index < scan->length
           && (is_ascii_alpha(scan->ascii[index]) || scan->ascii[index] == '-')) {
        index++;
    }
    if (index == start || !ascii_at(scan, index, ':')) {
        return -1;
    }
    const unsigned char *newline =
        memchr(scan->ascii + index, '\n', (size_t)(scan->length - index));
    return newline == NULL ? -1 : newline - scan->ascii + 1;
}

/* The rest of _PEM_PRIVATE_KEY after the header at `header_end`:
 *   \s+(?:[A-Za-z\-]+:[^\n]*\n\s*)*([A-Za-z0-9+/=\s]{40,16384})
 * Greedily the blanks, then header lines as long as they follow each other (each line's end and
 * its trailing whitespace are fixed), then the body. When the body is too short, the engine
 * unwinds from the last line to the first: at each line it tries the body at the line's own
 * start, then starting 1, 2, ... characters earlier inside the whitespace before it (whitespace
 * is body too, so the body grows by one character per step; for the blanks after the header at
 * least one must stay). So the match is found at the last line position that allows 40 body
 * characters, which one pass forward tells. Sets the body's start and the match's end. */
static bool pem_rest(const Scan *scan, Py_ssize_t header_end, Py_ssize_t *body_start,
                     Py_ssize_t *end)
{
    Py_ssize_t blanks = space_run(scan, header_end);
    if (blanks == 0) {
        return false;
    }
    bool matched = false;
    Py_ssize_t position = header_end + blanks;
    /* How many whitespace characters before `position` the body may start into. */
    Py_ssize_t give_back = blanks - 1;
    for (;;) {
        Py_ssize_t run = pem_body_run(scan, position);
        if (run >= PEM_MIN_BODY) {
            matched = true;
            *body_start = position;
            *end = position + run;
        } else if (give_back + run >= PEM_MIN_BODY) {
            matched = true;
            *body_start = position - (PEM_MIN_BODY - run);
            *end = position + run;
        }
        Py_ssize_t line_end = pem_header_line_end(scan, position);
        if (line_end < 0) {
            return matched;
        }
        give_back = space_run(scan, line_end);
        position = line_end + give_back;
    }
}

/* pii._scan_private_keys: _PEM_PRIVATE_KEY.finditer, each body stripped of whitespace. */
static int scan_private_keys(Scan *scan)
{
    Py_ssize_t position = 0;
    unsigned char *body = NULL;
    int result = 0;
    for (;;) {
        Py_ssize_t start = find_literal(scan->ascii, position, scan->length, "-----BEGIN ", 11);
        if (start < 0) {
            break;
        }
        Py_ssize_t header_end = pem_header_end(scan, start + 11);
        Py_ssize_t body_start = 0, end = 0;
        if (header_end < 0 || !pem_rest(scan, header_end, &body_start, &end)) {
            position = start + 1;
            continue;
        }
        if (body == NULL) {
            body = PyMem_Malloc(PEM_MAX_BODY);
            if (body == NULL) {
                PyErr_NoMemory();
                result = -1;
                break;
            }
        }
        /* "".join(body.split()): what is not whitespace in the body is ASCII. */
        Py_ssize_t body_length = 0;
        for (Py_ssize_t index = body_start; index < end; index++) {
            if (!is_space_at(scan, index)) {
                body[body_length++] = scan->ascii[index];
            }
        }
        if (looks_random(body, body_length, PEM_MIN_BODY)) {
            /* match.group().split("\n", 1)[0] */
            const unsigned char *newline = memchr(scan->ascii + start, '\n', (size_t)(end - start));
            Py_ssize_t line_end = newline == NULL ? end : newline - scan->ascii;
            result = credential_hit(scan, start, line_end);
            if (result <= 0) {
                break;
            }
            result = 0;
        }
        position = end;
    }
    PyMem_Free(body);
    return result;
}

/* _ASSIGNED_VALUE's value after the operator at `start`:
 *   [ \t]*["'`]?([A-Za-z0-9/+_\-.~=!@#$%^&*]{12,200})
 * Neither blanks nor quotes are value characters, so giving any back cannot help. */
static bool assigned_value_after(const Scan *scan, Py_ssize_t start, Py_ssize_t *value_start,
                                 Py_ssize_t *value_end)
{
    const unsigned char *ascii = scan->ascii;
    Py_ssize_t index = start;
    while (index < scan->length && is_blank(ascii[index])) {
        index++;
    }
    if (index < scan->length
        && (ascii[index] == '"' || ascii[index] == '\'' || ascii[index] == '`')) {
        index++;
    }
    Py_ssize_t run = class_run(scan, index, 200, CLASS_TOKEN);
    if (run < 12) {
        return false;
    }
    *value_start = index;
    *value_end = index + run;
    return true;
}

/* _ASSIGNED_VALUE.match(text, start): ["']?[ \t]*(?::=|=|:|=>) then the value. The quote and
 * blanks cannot be given back usefully (the operator never starts with either); the operator's
 * alternatives are tried in the pattern's order. */
static bool assigned_value(const Scan *scan, Py_ssize_t start, Py_ssize_t *value_start,
                           Py_ssize_t *value_end)
{
    const unsigned char *ascii = scan->ascii;
    Py_ssize_t index = start;
    if (index < scan->length && (ascii[index] == '"' || ascii[index] == '\'')) {
        index++;
    }
    while (index < scan->length && is_blank(ascii[index])) {
        index++;
    }
    if (ascii_at(scan, index, ':')) {
        if (ascii_at(scan, index + 1, '=')
            && assigned_value_after(scan, index + 2, value_start, value_end)) {
            return true;
        }
        return assigned_value_after(scan, index + 1, value_start, value_end);
    }
    if (ascii_at(scan, index, '=')) {
        if (assigned_value_after(scan, index + 1, value_start, value_end)) {
            return true;
        }
        return ascii_at(scan, index + 1, '>')
               && assigned_value_after(scan, index + 2, value_start, value_end);
    }
    return false;
}

static const char *const ASSIGNMENT_KEYWORDS[] = {"key", "secret", "token", "passw"};

/* An identifier followed by an assigned value that looks random. */
typedef struct {
    Py_ssize_t identifier_start;
    Py_ssize_t identifier_end;
    Py_ssize_t value_start;
    Py_ssize_t value_end;
} Assignment;

typedef struct {
    Assignment inline_items[16];
    Assignment *items;
    Py_ssize_t count;
    Py_ssize_t capacity;
} Assignments;

static int assignments_append(Assignments *found, Assignment assignment)
{
    if (found->count == found->capacity) {
        Py_ssize_t capacity = found->capacity * 2;
        Assignment *grown = PyMem_Malloc((size_t)capacity * sizeof(Assignment));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(grown, found->items, (size_t)found->count * sizeof(Assignment));
        if (found->items != found->inline_items) {
            PyMem_Free(found->items);
        }
        found->items = grown;
        found->capacity = capacity;
    }
    found->items[found->count++] = assignment;
    return 0;
}

/* The characters _ASSIGNED_VALUE may put between an identifier and its value. */
static inline bool is_assignment_gap(unsigned char c)
{
    return c == '"' || c == '\'' || c == '`' || is_blank(c) || c == ':' || c == '=' || c == '>';
}

/* Whether text[start:end] holds `keyword` (lowercase) ignoring ASCII case, as folded.find does. */
static bool holds_keyword(const unsigned char *ascii, Py_ssize_t start, Py_ssize_t end,
                          const char *keyword)
{
    Py_ssize_t length = (Py_ssize_t)strlen(keyword);
    for (Py_ssize_t index = start; index + length <= end; index++) {
        Py_ssize_t matched = 0;
        while (matched < length) {
            unsigned char c = ascii[index + matched];
            if ((c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c) != (unsigned char)keyword[matched]) {
                break;
            }
            matched++;
        }
        if (matched == length) {
            return true;
        }
    }
    return false;
}

/* If an assignment can follow the identifier ending at `identifier_end`, remember it. */
static int consider_identifier(const Scan *scan, Py_ssize_t identifier_end, Assignments *found)
{
    Py_ssize_t identifier_start = identifier_end;
    while (identifier_start > 0 && has_class(scan->ascii[identifier_start - 1], CLASS_IDENTIFIER)) {
        identifier_start--;
    }
    Py_ssize_t value_start, value_end;
    if (identifier_end - identifier_start < 3 /* the shortest keyword */
        || !assigned_value(scan, identifier_end, &value_start, &value_end)
        || !looks_random(scan->ascii + value_start, value_end - value_start, 16)) {
        return 0;
    }
    Assignment assignment = {identifier_start, identifier_end, value_start, value_end};
    return assignments_append(found, assignment);
}

/* pii._scan_assignments, driven by the long runs instead of keyword searches over the text.
 *
 * pii.py visits, for each keyword, the first occurrence of it in each identifier (the maximal
 * run of [A-Za-z0-9_.-] holding it) and yields the value assigned after the identifier's end,
 * if it looks random; its gate searches only skip keywords that would yield nothing. A value
 * that looks random is 16+ token characters, so it lies in a long run, and either starts that
 * run or follows a "=" inside it (the only token character the operator holds). Going back
 * from there over the operator's characters (quotes, blanks, ":", "=", ">"; none of them an
 * identifier character) reaches the identifier's end. So the identifiers reached that way from
 * each run start and each "=" hold every hit; each is checked once, then yields its value once
 * for each keyword it holds, keyword by keyword as pii.py does. The positions reached never
 * decrease, so a repeat is always the previous one. */
static int scan_assignments(Scan *scan, const Runs *runs)
{
    Assignments found;
    found.items = found.inline_items;
    found.count = 0;
    found.capacity = sizeof found.inline_items / sizeof *found.inline_items;
    int result = 0;
    /* The previous value start and the identifier end found from it: a walk back that reaches
     * that start has the same end, so no character is walked twice ("=====..." stays linear). */
    Py_ssize_t previous_start = 0, previous_end = -1;
    for (Py_ssize_t run = 0; run < runs->count && result == 0; run++) {
        Py_ssize_t run_start = runs->spans[run].start;
        Py_ssize_t last_value_start = runs->spans[run].end - LONG_TOKEN;
        for (Py_ssize_t value_start = run_start; value_start <= last_value_start && result == 0;) {
            Py_ssize_t identifier_end = value_start;
            while (identifier_end > previous_start
                   && is_assignment_gap(scan->ascii[identifier_end - 1])) {
                identifier_end--;
            }
            if (identifier_end == previous_start && previous_end >= 0) {
                identifier_end = previous_end;
            }
            previous_start = value_start;
            if (identifier_end != previous_end) {
                previous_end = identifier_end;
                result = consider_identifier(scan, identifier_end, &found);
            }
            const unsigned char *equals =
                memchr(scan->ascii + value_start, '=', (size_t)(last_value_start - value_start));
            if (equals == NULL) {
                break;
            }
            value_start = equals - scan->ascii + 1;
        }
    }
    /* 1 while credentials are still wanted, 0 once detect mode has one, -1 on error. */
    int more = result < 0 ? -1 : 1;
    size_t keywords = sizeof ASSIGNMENT_KEYWORDS / sizeof *ASSIGNMENT_KEYWORDS;
    for (size_t keyword = 0; more > 0 && keyword < keywords; keyword++) {
        for (Py_ssize_t index = 0; more > 0 && index < found.count; index++) {
            const Assignment *assignment = &found.items[index];
            if (holds_keyword(scan->ascii, assignment->identifier_start,
                              assignment->identifier_end, ASSIGNMENT_KEYWORDS[keyword])) {
                more = credential_hit(scan, assignment->value_start, assignment->value_end);
            }
        }
    }
    if (found.items != found.inline_items) {
        PyMem_Free(found.items);
    }
    return more < 0 ? -1 : 0;
}

/* pii._may_be_assigned */
static bool may_be_assigned(const Scan *scan, Py_ssize_t start, Py_ssize_t end)
{
    const unsigned char *ascii = scan->ascii;
    if (memchr(ascii + start, '=', (size_t)(end - LONG_TOKEN - start)) != NULL) {
        return true;
    }
    Py_ssize_t window_start = start > OPERATOR_LOOKBACK ? start - OPERATOR_LOOKBACK : 0;
    Py_ssize_t before_end = start;
    if (before_end > window_start
        && (ascii[before_end - 1] == '"' || ascii[before_end - 1] == '\''
            || ascii[before_end - 1] == '`')) {
        before_end--;
    }
    while (before_end > window_start && is_blank(ascii[before_end - 1])) {
        before_end--;
    }
    if (before_end == window_start) {
        return window_start > 0;
    }
    unsigned char last = ascii[before_end - 1];
    return last == '=' || last == ':' || last == '>';
}

/* Whether some long run follows [Bb]earer[ \t]+. A Bearer hit's token (16+ token characters
 * after a blank) is a whole long run's start, so without such a run there is none, and the
 * exact scan of the text (finditer's matches may overlap the "Bearer" before a run) is
 * skipped. This stands for pii.py's `"earer" in text`, which gates the same scan. */
static bool bearer_may_precede_run(const Scan *scan, const Runs *runs)
{
    for (Py_ssize_t run = 0; run < runs->count; run++) {
        Py_ssize_t index = runs->spans[run].start;
        while (index > 0 && is_blank(scan->ascii[index - 1])) {
            index--;
        }
        if (index < runs->spans[run].start && index >= 6
            && memcmp(scan->ascii + index - 5, "earer", 5) == 0
            && (scan->ascii[index - 6] == 'B' || scan->ascii[index - 6] == 'b')) {
            return true;
        }
    }
    return false;
}

/* pii._TOKEN_CREDENTIAL_SCANNERS, but for "Bearer", in their order. pii.py runs a scanner only
 * where its literal is in a long run; each scanner here looks for its literal in each run, which
 * is the same test. */
static const RunScanner TOKEN_SCANNERS[] = {
    scan_openai_keys,   /* "sk-" */
    scan_aws_keys,      /* "IA": AKIA, ASIA */
    scan_github_tokens, /* "gh" */
    scan_github_fine_grained_tokens, /* "github_pat_" */
    scan_slack_tokens,  /* "xox" */
    scan_jwts,          /* "eyJ" */
};

static int scan_token_credentials(Scan *scan, const Runs *runs)
{
    for (size_t index = 0; index < sizeof TOKEN_SCANNERS / sizeof *TOKEN_SCANNERS; index++) {
        for (Py_ssize_t run = 0; run < runs->count; run++) {
            if (TOKEN_SCANNERS[index](scan, runs->spans[run].start, runs->spans[run].end) < 0) {
                return -1;
            }
            if (!scan->wanted[PII_CREDENTIAL]) {
                return 0;
            }
        }
    }
    /* "Bearer" is separated from its token by blanks: looked for in the whole text. */
    if (bearer_may_precede_run(scan, runs) && scan_bearer_tokens(scan) < 0) {
        return -1;
    }
    return 0;
}

/* pii._scan_credentials */
int pii_scan_credentials(Scan *scan)
{
    /* "PRIVATE KEY" in text, found by its rare capital K. */
    bool private_key = false;
    for (Py_ssize_t k = 8; !private_key && k + 3 <= scan->length; k++) {
        const unsigned char *found = memchr(scan->ascii + k, 'K', (size_t)(scan->length - 2 - k));
        if (found == NULL) {
            break;
        }
        k = found - scan->ascii;
        private_key = memcmp(found - 8, "PRIVATE KEY", 11) == 0;
    }
    if (private_key) {
        if (scan_private_keys(scan) < 0) {
            return -1;
        }
        if (!scan->wanted[PII_CREDENTIAL]) {
            return 0;
        }
    }
    Runs runs;
    runs.spans = runs.inline_spans;
    runs.count = 0;
    runs.capacity = sizeof runs.inline_spans / sizeof *runs.inline_spans;
    int result = long_token_runs(scan, &runs);
    if (result == 0 && runs.count > 0) {
        result = scan_token_credentials(scan, &runs);
        if (result == 0 && scan->wanted[PII_CREDENTIAL]) {
            for (Py_ssize_t index = 0; index < runs.count; index++) {
                if (may_be_assigned(scan, runs.spans[index].start, runs.spans[index].end)) {
                    result = scan_assignments(scan, &runs);
                    break;
                }
            }
        }
    }
    runs_release(&runs);
    return result;
}

/* -------------------------------------------------------------------------------------- IPv6 */

#define IPV6_MAX_LENGTH 45

/* _IPV6_ANCHOR.search(text, position): ":(?:[0-9A-Fa-f]{1,4})?:". Hex digits never equal ":",
 * so at a colon the group takes the whole run of up to 4 hex digits or nothing. Sets the span. */
static bool ipv6_anchor(const Scan *scan, Py_ssize_t position, Py_ssize_t *start, Py_ssize_t *end)
{
    const unsigned char *ascii = scan->ascii;
    while (position < scan->length) {
        const unsigned char *colon =
            memchr(ascii + position, ':', (size_t)(scan->length - position));
        if (colon == NULL) {
            return false;
        }
        Py_ssize_t at = colon - ascii;
        Py_ssize_t hex = class_run(scan, at + 1, 5, CLASS_HEX);
        if (hex <= 4 && ascii_at(scan, at + 1 + hex, ':')) {
            *start = at;
            *end = at + hex + 2;
            return true;
        }
        position = at + 1;
    }
    return false;
}

/* The checks of pii.is_ipv6 before it parses: a candidate failing them is no address, and
 * most candidates fail them, so the Python call is saved. */
static bool may_be_ipv6(const Scan *scan, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t colons = 0;
    bool double_colon = false, dot = false, has_digit = false;
    for (Py_ssize_t index = start; index < end; index++) {
        unsigned char c = scan->ascii[index];
        if (c == ':') {
            colons++;
            double_colon |= index + 1 < end && scan->ascii[index + 1] == ':';
        }
        dot |= c == '.';
        has_digit |= is_ascii_digit(c);
    }
    if (colons < 2 || (!double_colon && colons != 7 && !(colons == 6 && dot))) {
        return false;
    }
    return has_digit;
}

/* pii._scan_ipv6 */
int pii_scan_ipv6(Scan *scan)
{
    const unsigned char *ascii = scan->ascii;
    Py_ssize_t length = scan->length;
    Py_ssize_t position = 0;
    Py_ssize_t anchor_start, anchor_end;
    while (ipv6_anchor(scan, position, &anchor_start, &anchor_end)) {
        position = anchor_end;
        Py_ssize_t window_start =
            anchor_start > IPV6_MAX_LENGTH ? anchor_start - IPV6_MAX_LENGTH : 0;
        if (anchor_end - anchor_start > 2) {
            /* Without "::" an address needs 6 or 7 colons: times such as 10:42:17 stop here. */
            Py_ssize_t window_end = min_index(anchor_end + IPV6_MAX_LENGTH, length);
            Py_ssize_t colons = 0;
            bool double_colon = false;
            for (Py_ssize_t index = window_start; index < window_end; index++) {
                if (ascii[index] == ':') {
                    colons++;
                    double_colon |= index + 1 < window_end && ascii[index + 1] == ':';
                }
            }
            if (colons < 6 && !double_colon) {
                continue;
            }
        }
        /* _IPV6_HEAD: the hex digits and colons right before the anchor, within the window. */
        Py_ssize_t first = anchor_start;
        while (first > window_start
               && (ascii[first - 1] == ':' || has_class(ascii[first - 1], CLASS_HEX))) {
            first--;
        }
        /* _IPV6_TAIL: hex digits, colons and dots after it, at most 45 characters. */
        Py_ssize_t last = anchor_end;
        Py_ssize_t tail_end = min_index(anchor_end + IPV6_MAX_LENGTH, length);
        while (last < tail_end
               && (ascii[last] == ':' || ascii[last] == '.' || has_class(ascii[last], CLASS_HEX))) {
            last++;
        }
        Py_ssize_t candidate_end = last;
        while (candidate_end > first && ascii[candidate_end - 1] == '.') {
            candidate_end--; /* .rstrip(".") */
        }
        if (!is_word_char(scan_char(scan, first - 1))
            && !is_word_char(scan_char(scan, candidate_end))
            && may_be_ipv6(scan, first, candidate_end)) {
            int is_ipv6 = python_check(scan, scan->is_ipv6, first, candidate_end);
            if (is_ipv6 < 0) {
                return -1;
            }
            if (is_ipv6) {
                if (scan_hit_slice(scan, PII_IP_ADDRESS, first, candidate_end) < 0) {
                    return -1;
                }
                if (!scan->wanted[PII_IP_ADDRESS]) {
                    return 0;
                }
            }
        }
        position = last;
    }
    return 0;
}
