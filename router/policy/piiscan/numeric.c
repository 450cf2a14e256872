/* Numeric PII: pii._scan_numeric and everything it calls (IBAN, cards, SSN, IPv4, phones). */
#include "piiscan.h"

int pii_scan_numeric(Scan *scan)
{
    (void)scan;
    return 0; /* TODO(helper numeric): port pii._scan_numeric */
}
