/*
 * Test hooks.  In builds with UKTLS_TEST_HOOKS every allocation site on the
 * receive path asks uktls_fault_hook whether to fail, so that a test can fail
 * each site in turn; the race hook lets a test run code at the moment a
 * worker holds a detached record unlocked.  Release builds compile both away.
 */
#ifndef UKTLS_FAULT_H
#define UKTLS_FAULT_H

#ifdef UKTLS_TEST_HOOKS
/* Return non-zero to make the allocation at site fail. */
extern int (*volatile uktls_fault_hook)(const char *site);
#define UKTLS_FAULT(site)                                                  \
	(uktls_fault_hook != NULL && uktls_fault_hook(site) != 0)
#else
#define UKTLS_FAULT(site) 0
#endif

#endif /* UKTLS_FAULT_H */
