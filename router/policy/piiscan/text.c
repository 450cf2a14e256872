/* Textual PII: e-mail (pii._scan_email), credentials (pii._scan_credentials), IPv6 (pii._scan_ipv6). */
#include "piiscan.h"

int pii_scan_email(Scan *scan)
{
    (void)scan;
    return 0; /* TODO(helper text) */
}

int pii_scan_credentials(Scan *scan)
{
    (void)scan;
    return 0; /* TODO(helper text) */
}

int pii_scan_ipv6(Scan *scan)
{
    (void)scan;
    return 0; /* TODO(helper text) */
}
