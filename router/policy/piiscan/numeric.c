/* Numeric PII: pii._scan_numeric and everything it calls (IBAN, cards, SSN, IPv4, phones).
 *
 * Inside a numeric candidate every character is an ASCII digit or one of " .-/()" (that is what
 * pii._MAPPED_CANDIDATE matches on the class map), so clusters, digit groups and separators are
 * read from scan->ascii; characters around them (word boundaries, the words before a number) are
 * read as code points, as Python sees them.
 */
#include "piiscan.h"

#include <stdint.h>
#include <string.h>

#define MIN_NUMERIC_CLUSTER 7 /* pii._MIN_NUMERIC_CLUSTER */
#define MAX_PHONE_GROUPS 8    /* pii._MAX_PHONE_GROUPS */
#define CONTEXT_CHARS 24      /* pii._CONTEXT_CHARS */
#define MAX_CONTEXT_WORDS 3   /* the most words any caller of pii._words_before asks for */
#define MAX_PHONE_VALUE 24    /* "00" or "+" and at most 15 digits */

/* A digit group (or any run) of the text: text[start:start + length]. */
typedef struct {
    Py_ssize_t start;
    Py_ssize_t length;
} Span;

/* A separator between two digit groups, as one integer: its first character, and its second
 * (if any) shifted by 8 bits. pii._CLUSTER's separators are one or two characters long (" ",
 * ".", "-", "/", ")", ") ", " (", "("), so equal codes mean equal separators. */
#define SEP2(first, second) ((int)(first) | (int)(second) << 8)

static inline Py_UCS4 separator_last_char(int separator)
{
    return (Py_UCS4)(separator > 0xFF ? separator >> 8 : separator);
}

/* A growable list of spans. */
typedef struct {
    Span *items;
    Py_ssize_t count;
    Py_ssize_t capacity;
} SpanList;

static int span_list_append(SpanList *list, Py_ssize_t start, Py_ssize_t length)
{
    if (list->count == list->capacity) {
        Py_ssize_t capacity = list->capacity ? 2 * list->capacity : 16;
        Span *items = PyMem_Realloc(list->items, (size_t)capacity * sizeof(Span));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count].start = start;
    list->items[list->count].length = length;
    list->count++;
    return 0;
}

typedef struct {
    Scan *scan;
    const unsigned char *ascii;
    Py_ssize_t length;
    /* The numeric types wanted when the current candidate's validation began. pii.py collects
     * a candidate's hits and hands them out after it, so `wanted` cannot change while it
     * validates one; hits are recorded here as found (same order), and these flags keep the
     * validators reading what pii.py reads although detect mode unwants a type at its first
     * hit. */
    bool phone;
    bool payment_card;
    bool us_ssn;
    bool ip_address;
    /* The current cluster split into digit groups and the separators between them
     * (pii._SPLIT_GROUPS.split): separators[i] joins groups[i] and groups[i + 1]. */
    Span *groups;
    int *separators;
    Py_ssize_t capacity;
    /* One pass over the text finds where the class map holds "AA00" (_MAPPED_IBAN_START) and
     * the candidates (_MAPPED_CANDIDATE that _cannot_be_numeric_pii keeps), both in text order;
     * the IBANs are validated first, then the candidates, as in pii._scan_numeric. */
    SpanList iban_starts;
    SpanList candidates;
    /* pii._scan_numeric's iban_spans, in the order found (so by start). */
    SpanList ibans;
} Numeric;

/* A value a phone detector returns: text[start:end], or chars[:length] when assembled from
 * digit groups (length > 0). */
typedef struct {
    bool found;
    Py_ssize_t start;
    Py_ssize_t end;
    char chars[MAX_PHONE_VALUE];
    Py_ssize_t length;
} PhoneValue;

static inline bool is_digit_byte(unsigned char c) { return (unsigned char)(c - '0') < 10; }

static inline bool is_upper_byte(unsigned char c) { return (unsigned char)(c - 'A') < 26; }

/* The first ASCII digit in ascii[from:length], or `length`. Prose has few digits, so this skips
 * eight characters at a time: scan->ascii holds only bytes below 0x80, so adding 0x50 (0x46)
 * to each byte sets its top bit exactly when it is at least '0' (':'), without carries. */
static Py_ssize_t next_digit(const unsigned char *ascii, Py_ssize_t from, Py_ssize_t length)
{
    const uint64_t ones = 0x0101010101010101u;
    Py_ssize_t index = from;
    while (index + 8 <= length) {
        uint64_t chunk;
        memcpy(&chunk, ascii + index, 8);
        uint64_t digits = (chunk + 0x50 * ones) & ~(chunk + 0x46 * ones) & 0x80 * ones;
        if (digits != 0) {
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return index + (__builtin_ctzll(digits) >> 3); /* the first byte is the lowest */
#else
            break;
#endif
        }
        index += 8;
    }
    while (index < length && (unsigned char)(ascii[index] - '0') >= 10) {
        index++;
    }
    return index;
}

/* " .-/()": the separators the class map keeps. */
static inline bool is_separator_byte(unsigned char c)
{
    return c == ' ' || c == '.' || c == '-' || c == '/' || c == '(' || c == ')';
}

/* The characters of pii._MAPPED_CANDIDATE's run, "[0 .\-/()]" on the class map: an ASCII digit or a
 * separator. All lie in 0x20..0x39, hence one 64-bit mask. */
#define CANDIDATE_CHARS                                                                          \
    ((1ull << (' ' - 0x20)) | (1ull << ('(' - 0x20)) | (1ull << (')' - 0x20))                    \
     | (1ull << ('-' - 0x20)) | (1ull << ('.' - 0x20)) | (1ull << ('/' - 0x20))                  \
     | (0x3FFull << ('0' - 0x20)))

static inline bool is_candidate_byte(unsigned char c)
{
    unsigned offset = (unsigned)c - 0x20u;
    return offset < 26u && ((CANDIDATE_CHARS >> offset) & 1u);
}

static int record_phone(Scan *scan, const PhoneValue *phone)
{
    if (phone->length == 0) {
        return scan_hit_slice(scan, PII_PHONE, phone->start, phone->end);
    }
    if (scan->detect_mode) {
        return scan_hit(scan, PII_PHONE, Py_NewRef(Py_None));
    }
    return scan_hit(scan, PII_PHONE, scan_ascii_string(phone->chars, phone->length));
}

/* ------------------------------------------------------------------------- words before */

/* One word of pii._words_before: lowercased, stripped of _CONTEXT_PUNCTUATION. A word holding a
 * character whose lowercase is not ASCII can equal none of pii.py's (ASCII) word sets. */
typedef struct {
    char chars[CONTEXT_CHARS + 1];
    Py_ssize_t length;
    bool comparable;
} Word;

static inline bool is_context_punctuation(char c)
{
    return c != '\0' && strchr(".:#-=()[]'\"", c) != NULL;
}

/* pii._words_before: fills `words` with the last `count` words before `start`, in text order;
 * returns how many there are. */
static int words_before(const Scan *scan, Py_ssize_t start, int count, Word *words)
{
    Py_ssize_t window_start = start > CONTEXT_CHARS ? start - CONTEXT_CHARS : 0;
    Span spans[MAX_CONTEXT_WORDS];
    int found = 0;
    Py_ssize_t end = start;
    while (found < count) {
        while (end > window_start && Py_UNICODE_ISSPACE(scan_char(scan, end - 1))) {
            end--;
        }
        if (end == window_start) {
            break;
        }
        Py_ssize_t begin = end;
        while (begin > window_start && !Py_UNICODE_ISSPACE(scan_char(scan, begin - 1))) {
            begin--;
        }
        spans[found].start = begin;
        spans[found].length = end - begin;
        found++;
        end = begin;
    }
    for (int index = 0; index < found; index++) {
        const Span *span = &spans[found - 1 - index];
        Word *word = &words[index];
        /* str.lower() maps no non-ASCII character to ASCII but the Kelvin sign; '\0' marks the
         * others, which strip() keeps and no word set holds. */
        char lowered[CONTEXT_CHARS];
        for (Py_ssize_t offset = 0; offset < span->length; offset++) {
            Py_UCS4 c = scan_char(scan, span->start + offset);
            if (c < 128) {
                lowered[offset] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
            } else {
                lowered[offset] = c == 0x212A ? 'k' : '\0';
            }
        }
        Py_ssize_t first = 0;
        Py_ssize_t last = span->length;
        while (first < last && is_context_punctuation(lowered[first])) {
            first++;
        }
        while (last > first && is_context_punctuation(lowered[last - 1])) {
            last--;
        }
        word->length = last - first;
        word->comparable = memchr(lowered + first, '\0', (size_t)word->length) == NULL;
        memcpy(word->chars, lowered + first, (size_t)word->length);
        word->chars[word->length] = '\0';
    }
    return found;
}

static bool word_in(const Word *word, const char *const *set, size_t set_size)
{
    if (!word->comparable) {
        return false;
    }
    for (size_t index = 0; index < set_size; index++) {
        if (strcmp(word->chars, set[index]) == 0) {
            return true;
        }
    }
    return false;
}

#define WORD_IN(word, set) word_in((word), (set), sizeof(set) / sizeof((set)[0]))

/* pii._ORDER_NUMBER_WORDS, _NUMBER_WORDS, _VERSION_WORDS, _SSN_WORDS */
static const char *const ORDER_NUMBER_WORDS[] = {
    "order", "invoice", "ref", "reference", "tracking", "ticket",
    "serial", "isbn", "sku", "part", "case", "account",
};
static const char *const NUMBER_WORDS[] = {"no", "nr", "number", "id", "#", ""};
static const char *const VERSION_WORDS[] = {"v", "version", "release", "build"};
static const char *const SSN_WORDS[] = {"ssn", "ssn#", "security"};

/* pii._after_order_word */
static bool after_order_word(const Scan *scan, Py_ssize_t start)
{
    Word words[2];
    int count = words_before(scan, start, 2, words);
    if (count == 0) {
        return false;
    }
    if (WORD_IN(&words[count - 1], NUMBER_WORDS) && count == 2) {
        return WORD_IN(&words[0], ORDER_NUMBER_WORDS);
    }
    return WORD_IN(&words[count - 1], ORDER_NUMBER_WORDS);
}

/* pii._after_version_word (its substring pre-test only spares Python the split: every version
 * word holds "v", "release" or "build") */
static bool after_version_word(const Scan *scan, Py_ssize_t start)
{
    Word words[1];
    return words_before(scan, start, 1, words) == 1 && WORD_IN(&words[0], VERSION_WORDS);
}

/* pii._after_ssn_word */
static bool after_ssn_word(const Scan *scan, Py_ssize_t start)
{
    Word words[3];
    int count = words_before(scan, start, 3, words);
    for (int index = 0; index < count; index++) {
        if (WORD_IN(&words[index], SSN_WORDS)) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------------- IBAN */

/* pii._IBAN_LENGTHS */
static const struct {
    char country[3];
    int length;
} IBAN_LENGTHS[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22},
    {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20},
    {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22},
    {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HN", 28}, {"HR", 21},
    {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30},
    {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20},
    {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20},
    {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23},
    {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22},
    {"RU", 33}, {"SA", 24}, {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24},
    {"SM", 27}, {"SO", 23}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26},
    {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

static int iban_length(unsigned char first, unsigned char second)
{
    for (size_t index = 0; index < sizeof(IBAN_LENGTHS) / sizeof(IBAN_LENGTHS[0]); index++) {
        if ((unsigned char)IBAN_LENGTHS[index].country[0] == first
            && (unsigned char)IBAN_LENGTHS[index].country[1] == second) {
            return IBAN_LENGTHS[index].length;
        }
    }
    return 0;
}

static inline int iban_remainder_step(int remainder, unsigned char c)
{
    /* _IBAN_LETTER_DIGITS: A=10 ... Z=35, two decimal digits appended */
    if (is_digit_byte(c)) {
        return (remainder * 10 + (c - '0')) % 97;
    }
    return (remainder * 100 + (c - 'A' + 10)) % 97;
}

/* pii.iban_checksum_valid over the IBAN text[start:end] without its spaces: the number
 * rearranged[4:] + rearranged[:4], letters as digits, mod 97, computed digit by digit. */
static bool iban_checksum_valid(const unsigned char *ascii, Py_ssize_t start, Py_ssize_t end)
{
    int remainder = 0;
    for (Py_ssize_t index = start + 4; index < end; index++) {
        if (ascii[index] != ' ') {
            remainder = iban_remainder_step(remainder, ascii[index]);
        }
    }
    for (Py_ssize_t index = start; index < start + 4; index++) {
        remainder = iban_remainder_step(remainder, ascii[index]);
    }
    return remainder == 1;
}

/* pii._iban_at: the end of the IBAN starting at `start` (where the class map holds "AA00"), or
 * -1. */
static Py_ssize_t iban_at(const Numeric *numeric, Py_ssize_t start)
{
    const unsigned char *ascii = numeric->ascii;
    if (is_word_char(scan_char(numeric->scan, start - 1))) {
        return -1;
    }
    int expected = iban_length(ascii[start], ascii[start + 1]);
    if (expected == 0) {
        return -1;
    }
    /* _IBAN_OF_LENGTH[expected]: [A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){expected - 4}; the first four
     * are the "AA00" found. */
    Py_ssize_t position = start + 4;
    for (int index = 0; index < expected - 4; index++) {
        if (position < numeric->length && ascii[position] == ' ') {
            position++;
        }
        if (position >= numeric->length
            || !(is_upper_byte(ascii[position]) || is_digit_byte(ascii[position]))) {
            return -1;
        }
        position++;
    }
    if (is_word_char(scan_char(numeric->scan, position))) {
        return -1;
    }
    return iban_checksum_valid(ascii, start, position) ? position : -1;
}

/* The IBAN part of pii._scan_numeric. */
static int scan_ibans(Numeric *numeric)
{
    Scan *scan = numeric->scan;
    for (Py_ssize_t index = 0; index < numeric->iban_starts.count; index++) {
        Py_ssize_t position = numeric->iban_starts.items[index].start;
        Py_ssize_t end = iban_at(numeric, position);
        if (end == -1) {
            continue;
        }
        if (span_list_append(&numeric->ibans, position, end - position) < 0
            || scan_hit_slice(scan, PII_IBAN, position, end) < 0) {
            return -1;
        }
        if (!scan->wanted[PII_IBAN]) {
            break;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------- IPv4 */

/* pii.is_ipv4 (_HOST_IPV4) on text[start:end], which holds digits and dots only: four octets
 * 0-255 without leading zeros, the first not 127, 0 or 255. */
static bool is_ipv4(const unsigned char *ascii, Py_ssize_t start, Py_ssize_t end)
{
    int octets = 0;
    Py_ssize_t position = start;
    while (octets < 4) {
        Py_ssize_t digits_start = position;
        int value = 0;
        while (position < end && is_digit_byte(ascii[position]) && position - digits_start < 3) {
            value = value * 10 + (ascii[position] - '0');
            position++;
        }
        Py_ssize_t digits = position - digits_start;
        if (digits == 0 || (digits > 1 && ascii[digits_start] == '0') || value > 255) {
            return false;
        }
        if (octets == 0 && (value == 127 || value == 0 || value == 255)) {
            return false;
        }
        octets++;
        if (octets < 4) {
            if (position >= end || ascii[position] != '.') {
                return false;
            }
            position++;
        }
    }
    return position == end;
}

/* pii._NOT_DOT: "[ \-/()]" */
static inline bool is_not_dot_byte(unsigned char c)
{
    return c == ' ' || c == '-' || c == '/' || c == '(' || c == ')';
}

/* pii._ipv4_in_cluster over the cluster text[start:end]; records each address. */
static int ipv4_in_cluster(Numeric *numeric, Py_ssize_t start, Py_ssize_t end)
{
    const unsigned char *ascii = numeric->ascii;
    Scan *scan = numeric->scan;
    Py_ssize_t position = start;
    for (int index = 0;; index++) {
        Py_ssize_t token_start = position;
        int dots = 0;
        while (position < end && !is_not_dot_byte(ascii[position])) {
            dots += ascii[position] == '.';
            position++;
        }
        if (dots == 3 && is_ipv4(ascii, token_start, position)) {
            Py_UCS4 before = scan_char(scan, start - 1);
            bool skipped = index == 0
                           && (before == '.' || before == ':' || after_version_word(scan, start));
            if (!skipped && scan_hit_slice(scan, PII_IP_ADDRESS, token_start, position) < 0) {
                return -1;
            }
        }
        if (position >= end) {
            return 0;
        }
        while (position < end && is_not_dot_byte(ascii[position])) {
            position++;
        }
    }
}

/* ------------------------------------------------------------------------- payment cards */

/* pii.luhn_valid */
static bool luhn_valid(const char *digits, Py_ssize_t length)
{
    static const int doubled[10] = {0, 2, 4, 6, 8, 1, 3, 5, 7, 9}; /* _LUHN_DOUBLED */
    int sum = 0;
    for (Py_ssize_t from_end = 0; from_end < length; from_end++) {
        int value = digits[length - 1 - from_end] - '0';
        sum += from_end % 2 ? doubled[value] : value;
    }
    return sum % 10 == 0;
}

static int leading_number(const char *digits, int count)
{
    int value = 0;
    for (int index = 0; index < count; index++) {
        value = value * 10 + (digits[index] - '0');
    }
    return value;
}

/* pii._card_scheme_accepts (digits holds 13-19 digits) */
static bool card_scheme_accepts(const char *digits, Py_ssize_t length)
{
    int two = leading_number(digits, 2);
    int three = leading_number(digits, 3);
    int four = leading_number(digits, 4);
    int six = leading_number(digits, 6);
    if (digits[0] == '4') { /* Visa */
        return length == 13 || length == 16 || length == 19;
    }
    if ((51 <= two && two <= 55) || (2221 <= four && four <= 2720)) { /* Mastercard */
        return length == 16;
    }
    if (two == 34 || two == 37) { /* American Express */
        return length == 15;
    }
    if (2200 <= four && four <= 2204) { /* Mir */
        return 16 <= length && length <= 19;
    }
    if ((300 <= three && three <= 305) || two == 36 || two == 38 || two == 39) { /* Diners */
        return 14 <= length && length <= 19;
    }
    if (3528 <= four && four <= 3589) { /* JCB */
        return 16 <= length && length <= 19;
    }
    if (four == 6011 || (644 <= three && three <= 649) || two == 65
        || (622126 <= six && six <= 622925)) { /* Discover */
        return 16 <= length && length <= 19;
    }
    if (two == 62 || two == 81) { /* UnionPay */
        return 16 <= length && length <= 19;
    }
    if (two == 50 || (56 <= two && two <= 69)) { /* Maestro and domestic debit schemes */
        return 12 <= length && length <= 19;
    }
    return false;
}

/* pii.is_payment_card */
static bool is_payment_card(const char *digits, Py_ssize_t length)
{
    return 13 <= length && length <= 19 && card_scheme_accepts(digits, length)
           && luhn_valid(digits, length);
}

/* The digits of groups[first..last] joined, into `digits` (room for `room`); their count, or -1
 * when they do not fit. */
static Py_ssize_t join_digits(const Numeric *numeric, const Span *groups, Py_ssize_t first,
                              Py_ssize_t last, char *digits, Py_ssize_t room)
{
    Py_ssize_t length = 0;
    for (Py_ssize_t index = first; index <= last; index++) {
        if (length + groups[index].length > room) {
            return -1;
        }
        memcpy(digits + length, numeric->ascii + groups[index].start, (size_t)groups[index].length);
        length += groups[index].length;
    }
    return length;
}

/* pii._cards_in_groups; records each card. */
static int cards_in_groups(Numeric *numeric, Py_ssize_t count)
{
    const Span *groups = numeric->groups;
    const int *separators = numeric->separators;
    for (Py_ssize_t first = 0; first < count; first++) {
        Py_ssize_t length = groups[first].length;
        if (length != 4) {
            if (13 <= length && length <= 19
                && is_payment_card((const char *)numeric->ascii + groups[first].start, length)
                && scan_hit_slice(numeric->scan, PII_PAYMENT_CARD, groups[first].start,
                                  groups[first].start + length)
                       < 0) {
                return -1;
            }
            continue;
        }
        if (first + 2 >= count) {
            continue;
        }
        int separator = separators[first];
        if ((separator != ' ' && separator != '-') || separators[first + 1] != separator) {
            continue;
        }
        Py_ssize_t second = groups[first + 1].length;
        Py_ssize_t third = groups[first + 2].length;
        Py_ssize_t last_candidates[2];
        int candidates = 0;
        if (second == 6) {
            if (third == 4 || third == 5) {
                last_candidates[candidates++] = first + 2;
            }
        } else if (second == 4 && third == 4 && first + 3 < count
                   && separators[first + 2] == separator) {
            Py_ssize_t fourth = groups[first + 3].length;
            if (1 <= fourth && fourth <= 3) {
                last_candidates[candidates++] = first + 3;
            }
            if (fourth == 4) {
                last_candidates[candidates++] = first + 3;
                if (first + 4 < count && separators[first + 3] == separator
                    && groups[first + 4].length == 3) {
                    last_candidates[candidates++] = first + 4;
                }
            }
        } else {
            continue;
        }
        for (int index = 0; index < candidates; index++) {
            Py_ssize_t last = last_candidates[index];
            char digits[20];
            Py_ssize_t digit_count = join_digits(numeric, groups, first, last, digits, 19);
            if (digit_count != -1 && is_payment_card(digits, digit_count)
                && scan_hit_slice(numeric->scan, PII_PAYMENT_CARD, groups[first].start,
                                  groups[last].start + groups[last].length)
                       < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------- US SSN */

/* pii.is_us_ssn (digits holds 9 ASCII digits) */
static bool is_us_ssn(const char *digits)
{
    static const char *const samples[] = {"078051120", "219099999", "123456789"}; /* _SAMPLE_SSNS */
    for (size_t index = 0; index < sizeof(samples) / sizeof(samples[0]); index++) {
        if (memcmp(digits, samples[index], 9) == 0) {
            return false;
        }
    }
    return memcmp(digits, "000", 3) != 0 && memcmp(digits, "666", 3) != 0 && digits[0] != '9'
           && memcmp(digits + 3, "00", 2) != 0 && memcmp(digits + 5, "0000", 4) != 0;
}

/* pii._SSN_LAYOUT: groups of 3, 2 and 4 digits joined by one dash or one space each. */
static bool ssn_layout(const Numeric *numeric, Py_ssize_t count)
{
    for (Py_ssize_t first = 0; first + 2 < count; first++) {
        int separator = numeric->separators[first];
        if (numeric->groups[first].length == 3 && numeric->groups[first + 1].length == 2
            && numeric->groups[first + 2].length == 4 && (separator == '-' || separator == ' ')
            && numeric->separators[first + 1] == separator) {
            return true;
        }
    }
    return false;
}

/* pii._ssns_in_groups; records each SSN. */
static int ssns_in_groups(Numeric *numeric, Py_ssize_t start, Py_ssize_t count)
{
    const Span *groups = numeric->groups;
    const int *separators = numeric->separators;
    char digits[9];
    for (Py_ssize_t first = 0; first + 2 < count; first++) {
        if (groups[first].length != 3 || groups[first + 1].length != 2
            || groups[first + 2].length != 4) {
            continue;
        }
        int separator = separators[first];
        if ((separator != '-' && separator != ' ') || separators[first + 1] != separator) {
            continue;
        }
        /* A longer run joined by the same separator is some other number. */
        if (first > 0 && separators[first - 1] == separator) {
            continue;
        }
        if (first + 3 < count && separators[first + 2] == separator) {
            continue;
        }
        join_digits(numeric, groups, first, first + 2, digits, 9);
        if (is_us_ssn(digits)
            && scan_hit_slice(numeric->scan, PII_US_SSN, groups[first].start,
                              groups[first + 2].start + 4)
                   < 0) {
            return -1;
        }
    }
    if (count == 1 && groups[0].length == 9
        && is_us_ssn((const char *)numeric->ascii + groups[0].start)
        && after_ssn_word(numeric->scan, start)) {
        return scan_hit_slice(numeric->scan, PII_US_SSN, groups[0].start, groups[0].start + 9);
    }
    return 0;
}

/* ------------------------------------------------------------------------- phone numbers */

/* pii._COUNTRY_CODES, by the code's number of digits */
static bool is_country_code(int code, int digits)
{
    if (digits == 1) {
        return code == 1 || code == 7;
    }
    if (digits == 2) {
        static const int codes[] = {20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46,
                                    47, 48, 49, 51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63,
                                    64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98};
        for (size_t index = 0; index < sizeof(codes) / sizeof(codes[0]); index++) {
            if (codes[index] == code) {
                return true;
            }
        }
        return false;
    }
    static const int codes[] = {211, 212, 213, 216, 218, 290, 291, 297, 298, 299, 380, 381,
                                382, 383, 385, 386, 387, 389, 420, 421, 423, 670, 800, 808,
                                850, 852, 853, 855, 856, 870, 878, 880, 881, 882, 883, 886,
                                888, 979};
    for (size_t index = 0; index < sizeof(codes) / sizeof(codes[0]); index++) {
        if (codes[index] == code) {
            return true;
        }
    }
    static const int ranges[][2] = {{220, 258}, {260, 269}, {350, 359}, {370, 379}, {500, 509},
                                    {590, 599}, {672, 692}, {960, 968}, {970, 977}, {992, 998}};
    for (size_t index = 0; index < sizeof(ranges) / sizeof(ranges[0]); index++) {
        if (ranges[index][0] <= code && code <= ranges[index][1]) {
            return true;
        }
    }
    return false;
}

/* pii._nanp_valid */
static bool nanp_valid(const char *national, Py_ssize_t length)
{
    return length == 10 && national[0] != '0' && national[0] != '1'
           && !(national[1] == '1' && national[2] == '1') && national[3] != '0'
           && national[3] != '1';
}

/* pii.is_international_phone */
static bool is_international_phone(const char *digits, Py_ssize_t length)
{
    if (length < 8 || length > 15 || digits[0] == '0') {
        return false;
    }
    for (int code_length = 1; code_length <= 3; code_length++) {
        int code = leading_number(digits, code_length);
        if (is_country_code(code, code_length)) {
            const char *national = digits + code_length;
            Py_ssize_t national_length = length - code_length;
            if (code == 1) {
                return nanp_valid(national, national_length);
            }
            if (code == 7) {
                return national_length == 10;
            }
            return 6 <= national_length && national_length <= 13;
        }
    }
    return false;
}

/* pii._DATE and pii._looks_like_date on text[start:end] */
static bool looks_like_date(const unsigned char *ascii, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t lengths[3] = {0, 0, 0};
    int values[3] = {0, 0, 0};
    int part = 0;
    for (Py_ssize_t index = start; index < end; index++) {
        unsigned char c = ascii[index];
        if (is_digit_byte(c)) {
            if (lengths[part] == 4) {
                return false; /* no part is longer than 4 digits */
            }
            values[part] = values[part] * 10 + (c - '0');
            lengths[part]++;
        } else if ((c == '.' || c == '/' || c == '-') && part < 2) {
            part++;
        } else {
            return false;
        }
    }
    if (part != 2) {
        return false;
    }
    bool year_first = lengths[0] == 4 && 1 <= lengths[1] && lengths[1] <= 2 && 1 <= lengths[2]
                      && lengths[2] <= 2;
    bool year_last = 1 <= lengths[0] && lengths[0] <= 2 && 1 <= lengths[1] && lengths[1] <= 2
                     && 2 <= lengths[2] && lengths[2] <= 4;
    if (!year_first && !year_last) {
        return false;
    }
    int first = values[0];
    int second = values[1];
    if (first > 999) { /* year first: YYYY-MM-DD */
        first = values[2];
    }
    bool day_month = 1 <= first && first <= 31 && 1 <= second && second <= 12;
    bool month_day = 1 <= first && first <= 12 && 1 <= second && second <= 31;
    return day_month || month_day;
}

/* pii._international_phone over `count` groups (at most MAX_PHONE_GROUPS), separators[i]
 * joining groups[i] and groups[i + 1]. */
static PhoneValue international_phone(const Numeric *numeric, const Span *groups,
                                      const int *separators, Py_ssize_t count, const char *prefix)
{
    PhoneValue phone = {0};
    /* "+44 (0)20 ...": a "0" group after "(" is the trunk prefix, not dialled. kept_before is
     * the separator before each kept group (0 for the first group). */
    Span kept[MAX_PHONE_GROUPS];
    int kept_before[MAX_PHONE_GROUPS];
    Py_ssize_t kept_count = 0;
    for (Py_ssize_t index = 0; index < count; index++) {
        bool trunk_zero = groups[index].length == 1 && numeric->ascii[groups[index].start] == '0'
                          && index > 0 && separator_last_char(separators[index - 1]) == '(';
        if (!trunk_zero) {
            kept[kept_count] = groups[index];
            kept_before[kept_count] = index ? separators[index - 1] : 0;
            kept_count++;
        }
    }
    char digits[15];
    Py_ssize_t length = 0;
    for (Py_ssize_t index = 0; index < kept_count; index++) {
        if (length + kept[index].length > 15) {
            break;
        }
        memcpy(digits + length, numeric->ascii + kept[index].start, (size_t)kept[index].length);
        length += kept[index].length;
        if (index + 1 < kept_count && kept_before[index + 1] == '/') {
            break; /* "+49 30/1234" style extensions end the number */
        }
        if (is_international_phone(digits, length)) {
            size_t prefix_length = strlen(prefix);
            memcpy(phone.chars, prefix, prefix_length);
            memcpy(phone.chars + prefix_length, digits, (size_t)length);
            phone.length = (Py_ssize_t)prefix_length + length;
            phone.found = true;
        }
    }
    return phone;
}

/* pii._nanp_phone */
static PhoneValue nanp_phone(const Numeric *numeric, Py_UCS4 before, const Span *groups,
                             const int *separators, Py_ssize_t count)
{
    PhoneValue phone = {0};
    Py_ssize_t first;
    if (count >= 3 && groups[0].length == 3 && groups[1].length == 3 && groups[2].length == 4) {
        first = 0;
    } else if (count >= 4 && groups[0].length == 1 && groups[1].length == 3
               && groups[2].length == 3 && groups[3].length == 4
               && numeric->ascii[groups[0].start] == '1') {
        first = 1;
    } else {
        return phone;
    }
    int area_separator = separators[first];
    int line_separator = separators[first + 1];
    if (count > first + 3 && separators[first + 2] == line_separator) {
        return phone; /* the same layout runs on into more digits: some longer number */
    }
    bool parenthesised = (first == 0 ? before == '(' : separator_last_char(separators[0]) == '(')
                         && (area_separator == ')' || area_separator == SEP2(')', ' '));
    if (!parenthesised && (area_separator != line_separator || area_separator == '/')) {
        return phone;
    }
    if (line_separator != ' ' && line_separator != '-' && line_separator != '.') {
        return phone;
    }
    Py_ssize_t length = join_digits(numeric, groups, first, first + 2, phone.chars, 10);
    if (nanp_valid(phone.chars, length)) {
        phone.length = length;
        phone.found = true;
    }
    return phone;
}

/* pii._trunk_phone; separator_count is len(separators) there (count - 1, or count when the
 * groups were cut at MAX_PHONE_GROUPS). */
static PhoneValue trunk_phone(const Numeric *numeric, Py_UCS4 before, const Span *groups,
                              const int *separators, Py_ssize_t count, Py_ssize_t separator_count)
{
    PhoneValue phone = {0};
    const unsigned char *ascii = numeric->ascii;
    if (count < 2 || groups[0].length == 0 || ascii[groups[0].start] != '0'
        || (groups[0].length > 1 && ascii[groups[0].start + 1] == '0')) {
        return phone;
    }
    if (count >= 3 && groups[0].length == 3 && groups[1].length == 2 && groups[2].length == 4) {
        return phone; /* the US SSN layout, never a national phone layout */
    }
    /* "(030) 1234567": a parenthesised area code, then groups joined by one separator. */
    bool parenthesised = before == '(' && (separators[0] == ')' || separators[0] == SEP2(')', ' '));
    int separator = parenthesised && separator_count > 1 ? separators[1] : separators[0];
    if (separator != ' ' && separator != '-' && separator != '.' && separator != '/'
        && separator != ')' && separator != SEP2(')', ' ')) {
        return phone;
    }
    /* The longest run of groups with 9-12 digits. */
    Py_ssize_t digits = groups[0].length;
    Py_ssize_t last = 0;
    for (Py_ssize_t index = 1; index < count; index++) {
        int joined_by = separators[index - 1];
        if (joined_by != separator && !(index == 1 && parenthesised)) {
            break;
        }
        if (groups[index].length < 2 || groups[index].length > 8) {
            break;
        }
        digits += groups[index].length;
        if (digits > 12) {
            break;
        }
        if (digits >= 9) {
            last = index;
        }
    }
    if (last == 0) {
        return phone;
    }
    Py_ssize_t end = groups[last].start + groups[last].length;
    if (looks_like_date(ascii, groups[0].start, end)) {
        return phone;
    }
    /* The "(" of a parenthesised area code is the character before the first group. */
    phone.start = parenthesised ? groups[0].start - 1 : groups[0].start;
    phone.end = end;
    phone.found = true;
    return phone;
}

/* pii._national_phone */
static PhoneValue national_phone(const Numeric *numeric, Py_UCS4 before, const Span *groups,
                                 const int *separators, Py_ssize_t count,
                                 Py_ssize_t separator_count)
{
    const unsigned char *ascii = numeric->ascii;
    const Span *first = &groups[0];
    if (first->length >= 2 && ascii[first->start] == '0' && ascii[first->start + 1] == '0'
        && !(first->length >= 3 && ascii[first->start + 2] == '0')) {
        if (first->length > 2) {
            Span stripped[MAX_PHONE_GROUPS];
            memcpy(stripped, groups, (size_t)count * sizeof(Span));
            stripped[0].start += 2;
            stripped[0].length -= 2;
            return international_phone(numeric, stripped, separators, count, "00");
        }
        if (count > 1) {
            return international_phone(numeric, groups + 1, separators + 1, count - 1, "00");
        }
        PhoneValue none = {0};
        return none;
    }
    PhoneValue phone = nanp_phone(numeric, before, groups, separators, count);
    if (phone.found) {
        return phone;
    }
    return trunk_phone(numeric, before, groups, separators, count, separator_count);
}

/* pii._PHONE_LAYOUT: a group starting with 0, or groups of 3, 3 and 4 digits. */
static bool phone_layout(const Numeric *numeric, Py_ssize_t count)
{
    const Span *groups = numeric->groups;
    for (Py_ssize_t index = 0; index < count; index++) {
        if (groups[index].length > 0 && numeric->ascii[groups[index].start] == '0') {
            return true;
        }
        if (index + 2 < count && groups[index].length == 3 && groups[index + 1].length == 3
            && groups[index + 2].length == 4) {
            return true;
        }
    }
    return false;
}

static inline Py_ssize_t at_most(Py_ssize_t value, Py_ssize_t limit)
{
    return value < limit ? value : limit;
}

/* pii._phone_in_cluster over the cluster's `count` groups (count - 1 separators) */
static PhoneValue phone_in_cluster(const Numeric *numeric, Py_ssize_t start, Py_ssize_t count)
{
    const Scan *scan = numeric->scan;
    const Span *groups = numeric->groups;
    const int *separators = numeric->separators;
    Py_UCS4 before = scan_char(scan, start - 1);
    if (before == '+' && !is_word_char(scan_char(scan, start - 2))) {
        /* ("3+4 5678 9012" is arithmetic: a "+" after a digit or letter starts no number.) */
        PhoneValue phone = international_phone(numeric, groups, separators,
                                               at_most(count, MAX_PHONE_GROUPS), "+");
        if (phone.found) {
            return phone;
        }
    }
    /* A number may follow other digits in the same cluster: try every group that starts after
     * a space and could begin a number. */
    for (Py_ssize_t first = 0; first < count; first++) {
        Py_UCS4 before_group;
        if (first == 0) {
            if (before == '+' || before == '#') {
                continue;
            }
            before_group = before;
        } else {
            int separator = separators[first - 1];
            if (separator != ' ' && separator != SEP2(' ', '(') && separator != SEP2(')', ' ')) {
                continue;
            }
            before_group = separator_last_char(separator);
        }
        const Span *group = &groups[first];
        if (group->length != 1 && group->length != 3
            && (group->length == 0 || numeric->ascii[group->start] != '0')) {
            continue;
        }
        Py_ssize_t group_count = at_most(count - first, MAX_PHONE_GROUPS);
        Py_ssize_t separator_count = at_most(count - 1 - first, MAX_PHONE_GROUPS);
        PhoneValue phone = national_phone(numeric, before_group, groups + first,
                                          separators + first, group_count, separator_count);
        if (phone.found && !(first == 0 && after_order_word(scan, start))) {
            return phone;
        }
    }
    PhoneValue none = {0};
    return none;
}

/* ------------------------------------------------------------------------- clusters */

static int reserve_groups(Numeric *numeric, Py_ssize_t needed)
{
    if (needed <= numeric->capacity) {
        return 0;
    }
    Py_ssize_t capacity = numeric->capacity ? numeric->capacity : 64;
    while (capacity < needed) {
        capacity *= 2;
    }
    Span *groups = PyMem_Realloc(numeric->groups, (size_t)capacity * sizeof(Span));
    if (groups == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    numeric->groups = groups;
    int *separators = PyMem_Realloc(numeric->separators, (size_t)capacity * sizeof(int));
    if (separators == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    numeric->separators = separators;
    numeric->capacity = capacity;
    return 0;
}

/* pii._validate_cluster over the cluster text[start:end]; records the hits. */
static int validate_cluster(Numeric *numeric, Py_ssize_t start, Py_ssize_t end)
{
    Scan *scan = numeric->scan;
    const unsigned char *ascii = numeric->ascii;
    Py_ssize_t cluster_end = end;
    /* A first or last group glued to letters belongs to some identifier: drop it. */
    Py_UCS4 before = scan_char(scan, start - 1);
    if (is_word_char(before)) {
        const unsigned char *space = memchr(ascii + start, ' ', (size_t)(cluster_end - start));
        if (space == NULL) {
            return 0;
        }
        Py_ssize_t dropped_to = space - ascii + 1;
        before = ' ';
        if (dropped_to < cluster_end && ascii[dropped_to] == '(') {
            dropped_to++;
            before = '(';
        }
        start = dropped_to;
    }
    if (is_word_char(scan_char(scan, end))) {
        Py_ssize_t last_separator = cluster_end - 1;
        while (last_separator >= start && !is_separator_byte(ascii[last_separator])) {
            last_separator--;
        }
        if (last_separator <= start) {
            return 0;
        }
        cluster_end = last_separator;
        while (cluster_end > start && ascii[cluster_end - 1] != ')'
               && is_separator_byte(ascii[cluster_end - 1])) {
            cluster_end--;
        }
    }
    if (cluster_end - start < MIN_NUMERIC_CLUSTER || !is_digit_byte(ascii[start])) {
        return 0;
    }
    /* _SPLIT_GROUPS.split: digit groups alternating with separators, an empty last group when
     * the cluster ends with a separator. */
    if (reserve_groups(numeric, (cluster_end - start) / 2 + 2) < 0) {
        return -1;
    }
    Span *groups = numeric->groups;
    int *separators = numeric->separators;
    Py_ssize_t count = 0;
    Py_ssize_t digit_count = 0;
    int dots = 0;
    Py_ssize_t position = start;
    for (;;) {
        Py_ssize_t group_start = position;
        while (position < cluster_end && is_digit_byte(ascii[position])) {
            position++;
        }
        groups[count].start = group_start;
        groups[count].length = position - group_start;
        digit_count += position - group_start;
        count++;
        if (position == cluster_end) {
            break;
        }
        Py_ssize_t separator_start = position;
        while (position < cluster_end && !is_digit_byte(ascii[position])) {
            dots += ascii[position] == '.';
            position++;
        }
        separators[count - 1] = position - separator_start == 1
                                    ? ascii[separator_start]
                                    : SEP2(ascii[separator_start], ascii[separator_start + 1]);
    }
    if (numeric->ip_address && dots >= 3 && ipv4_in_cluster(numeric, start, cluster_end) < 0) {
        return -1;
    }
    bool international = before == '+'
                         || (cluster_end - start >= 2 && ascii[start] == '0'
                             && ascii[start + 1] == '0');
    if (digit_count < (international ? 8 : 9)) {
        return 0; /* shorter than any card, SSN or phone number */
    }
    if (numeric->payment_card && digit_count >= 13 && cards_in_groups(numeric, count) < 0) {
        return -1;
    }
    if (numeric->us_ssn && (ssn_layout(numeric, count) || digit_count == 9)
        && ssns_in_groups(numeric, start, count) < 0) {
        return -1;
    }
    if (numeric->phone && (before == '+' || phone_layout(numeric, count))) {
        PhoneValue phone = phone_in_cluster(numeric, start, count);
        if (phone.found && record_phone(scan, &phone) < 0) {
            return -1;
        }
    }
    return 0;
}

/* pii._MAPPED_ISO_DATE.fullmatch on the class map: "0000-00-00" or "0000-00-00 00". */
static bool is_mapped_iso_date(const unsigned char *ascii, Py_ssize_t start, Py_ssize_t end)
{
    static const char layout[] = "0000-00-00 00";
    Py_ssize_t length = end - start;
    if (length != 10 && length != 13) {
        return false;
    }
    for (Py_ssize_t index = 0; index < length; index++) {
        unsigned char c = ascii[start + index];
        if (layout[index] == '0' ? !is_digit_byte(c) : c != (unsigned char)layout[index]) {
            return false;
        }
    }
    return true;
}

/* pii._cannot_be_numeric_pii over the candidate text[start:end] */
static bool cannot_be_numeric_pii(const Numeric *numeric, Py_ssize_t start, Py_ssize_t end)
{
    const unsigned char *ascii = numeric->ascii;
    Py_ssize_t core_end = end;
    while (core_end > start && !is_digit_byte(ascii[core_end - 1])) {
        core_end--;
    }
    Py_ssize_t digit_count = 0;
    int dots = 0;
    for (Py_ssize_t index = start; index < core_end; index++) {
        digit_count += is_digit_byte(ascii[index]);
        dots += ascii[index] == '.';
    }
    if (dots >= 3) {
        return false;
    }
    if (digit_count < 8) {
        return true;
    }
    bool international = (start > 0 && ascii[start - 1] == '+')
                         || (ascii[start] == '0' && start + 1 < numeric->length
                             && ascii[start + 1] == '0');
    if (digit_count == 8) {
        return !international;
    }
    if (digit_count == core_end - start) {
        if (digit_count == 9 || (13 <= digit_count && digit_count <= 19)) {
            return false;
        }
        return !international;
    }
    return is_mapped_iso_date(ascii, start, core_end);
}

/* The first pass of pii._scan_numeric: every "AA00" of the class map (when IBANs are wanted)
 * and every candidate _cannot_be_numeric_pii keeps. */
static int find_candidates(Numeric *numeric, bool iban_wanted)
{
    const unsigned char *ascii = numeric->ascii;
    Py_ssize_t length = numeric->length;
    Py_ssize_t position = 0;
    for (;;) {
        /* A candidate starts at the first digit of a run of digits and separators and takes the
         * rest of the run, when that is 7 or more characters. Each digit after a capital starts
         * such a run, so every "AA00" is met here too, at its first digit. */
        position = next_digit(ascii, position, length);
        if (position == length) {
            return 0;
        }
        Py_ssize_t start = position;
        if (iban_wanted && start >= 2 && start + 1 < length && is_digit_byte(ascii[start + 1])
            && is_upper_byte(ascii[start - 1]) && is_upper_byte(ascii[start - 2])
            && span_list_append(&numeric->iban_starts, start - 2, 0) < 0) {
            return -1;
        }
        while (position < length && is_candidate_byte(ascii[position])) {
            position++;
        }
        if (position - start >= MIN_NUMERIC_CLUSTER
            && !cannot_be_numeric_pii(numeric, start, position)
            && span_list_append(&numeric->candidates, start, position - start) < 0) {
            return -1;
        }
    }
}

/* The clusters (_CLUSTER) of the candidate text[start:end], each validated: digit groups joined
 * by single separators, "(" and ")" as in phone area codes and "(0)". */
static int validate_clusters(Numeric *numeric, Py_ssize_t start, Py_ssize_t end)
{
    const unsigned char *ascii = numeric->ascii;
    Py_ssize_t cluster_start = start;
    for (;;) {
        while (cluster_start < end && !is_digit_byte(ascii[cluster_start])) {
            cluster_start++;
        }
        if (cluster_start >= end) {
            return 0;
        }
        Py_ssize_t cluster_end = cluster_start;
        for (;;) {
            while (cluster_end < end && is_digit_byte(ascii[cluster_end])) {
                cluster_end++;
            }
            Py_ssize_t separator_end = cluster_end;
            unsigned char c = separator_end < end ? ascii[separator_end] : 0;
            unsigned char next = separator_end + 1 < end ? ascii[separator_end + 1] : 0;
            if ((c == ' ' || c == '.' || c == '-' || c == '/') && is_digit_byte(next)) {
                separator_end += 1;
            } else if (c == ')' && next == ' ' && separator_end + 2 < end
                       && is_digit_byte(ascii[separator_end + 2])) {
                separator_end += 2;
            } else if (c == ')' && is_digit_byte(next)) {
                separator_end += 1;
            } else if (c == ' ' && next == '(' && separator_end + 2 < end
                       && is_digit_byte(ascii[separator_end + 2])) {
                separator_end += 2;
            } else if (c == '(' && is_digit_byte(next)) {
                separator_end += 1;
            } else {
                break;
            }
            cluster_end = separator_end;
        }
        if (cluster_end - cluster_start >= MIN_NUMERIC_CLUSTER
            && validate_cluster(numeric, cluster_start, cluster_end) < 0) {
            return -1;
        }
        cluster_start = cluster_end;
    }
}

/* The candidate loop of pii._scan_numeric. */
static int scan_candidates(Numeric *numeric)
{
    Scan *scan = numeric->scan;
    const SpanList *ibans = &numeric->ibans;
    Py_ssize_t passed_ibans = 0;
    for (Py_ssize_t index = 0; index < numeric->candidates.count; index++) {
        Py_ssize_t start = numeric->candidates.items[index].start;
        Py_ssize_t end = start + numeric->candidates.items[index].length;
        /* A candidate starting inside a found IBAN resumes after it (after the last such). An
         * IBAN ending before one candidate ends before every later one: it is passed once. */
        Py_ssize_t candidate_start = start;
        while (passed_ibans < ibans->count
               && ibans->items[passed_ibans].start + ibans->items[passed_ibans].length
                      <= candidate_start) {
            passed_ibans++;
        }
        for (Py_ssize_t iban = passed_ibans; iban < ibans->count; iban++) {
            Py_ssize_t first = ibans->items[iban].start;
            Py_ssize_t last = first + ibans->items[iban].length;
            if (first > candidate_start) {
                break; /* found in order: no later IBAN starts before the candidate */
            }
            if (candidate_start < last && last > start) {
                start = last;
            }
        }
        numeric->phone = scan->wanted[PII_PHONE];
        numeric->payment_card = scan->wanted[PII_PAYMENT_CARD];
        numeric->us_ssn = scan->wanted[PII_US_SSN];
        numeric->ip_address = scan->wanted[PII_IP_ADDRESS];
        if (validate_clusters(numeric, start, end) < 0) {
            return -1;
        }
        if (!scan_wants_numeric(scan)) {
            return 0;
        }
    }
    return 0;
}

/* pii._scan_numeric */
int pii_scan_numeric(Scan *scan)
{
    Numeric numeric = {
        .scan = scan,
        .ascii = scan->ascii,
        .length = scan->length,
    };
    int result = find_candidates(&numeric, scan->wanted[PII_IBAN]);
    if (result == 0) {
        result = scan_ibans(&numeric);
    }
    /* In detect mode the scan is over once no numeric type is wanted. */
    if (result == 0 && scan_wants_numeric(scan)) {
        result = scan_candidates(&numeric);
    }
    PyMem_Free(numeric.groups);
    PyMem_Free(numeric.separators);
    PyMem_Free(numeric.iban_starts.items);
    PyMem_Free(numeric.candidates.items);
    PyMem_Free(numeric.ibans.items);
    return result;
}
