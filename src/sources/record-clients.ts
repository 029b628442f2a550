import { hubspotClient } from './hubspot';
import type { ClientFor } from './record-pull';
import { zendeskClient } from './zendesk';

/**
 * The client that speaks a record source's API, by the kind its contract names. Each client reads
 * only its own kind of config, which the kind chosen here guarantees.
 */
export const clientFor: ClientFor = (config) => (config.kind === 'zendesk' ? zendeskClient : hubspotClient);
