/*
 * audit.h - router only: repair counts that a killed client leaked.
 *
 * A client killed between raising a counter and recording it in its
 * lease leaves the counter too high (never too low: see reserve.c).  When
 * such a cell has no lease at all, its true count is exactly what its
 * ring still owes, and the router can set it back.
 */
#ifndef GR_SHM_AUDIT_H
#define GR_SHM_AUDIT_H

#include "table.h"

/*
 * Audit cell index `cell`.  Returns the total amount repaired (>= 0), or
 * -EBUSY when the cell is not quiet (a lease holds it, or a count moved
 * during the audit): try again later.
 */
int64_t gr_shm_router_audit(const struct gr_shm *t, uint32_t cell);

#endif
