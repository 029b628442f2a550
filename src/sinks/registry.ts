import type { AdapterFor } from './deliver';
import { metronomeAdapter } from './metronome';
import { stripeAdapter } from './stripe';
import { webhookAdapter } from './webhook';

/**
 * The adapter that speaks a sink's API, by the kind its contract names. Each adapter reads only
 * its own kind of config, which the kind chosen here guarantees.
 */
export const adapterFor: AdapterFor = (config) =>
  config.kind === 'stripe' ? stripeAdapter : config.kind === 'metronome' ? metronomeAdapter : webhookAdapter;
