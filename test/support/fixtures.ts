/** The helpdesk export's header row, as examples/contract.acme.json maps its columns. */
export const HELPDESK_HEADER = 'Ticket ID,Status,Solved at,Updated at,CSAT';

/** Exact elapsed time in milliseconds (calendar days in a tenant's zone are another matter). */
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
