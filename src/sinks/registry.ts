import type { SinkConfig } from '../domain/sinks';
import type { AdapterFor } from './deliver';
import { metronomeAdapter } from './metronome';
import { stripeAdapter } from './stripe';
import type { SinkAdapter } from './types';
import { webhookAdapter } from './webhook';

/** The adapter that speaks a sink's API, by the kind its contract names. */
export const adapterFor: AdapterFor = (config: SinkConfig) => {
  const adapter = config.kind === 'stripe' ? stripeAdapter : config.kind === 'metronome' ? metronomeAdapter : webhookAdapter;
  // Each adapter takes only its own kind of config, which the kind above guarantees.
  return adapter as unknown as SinkAdapter<SinkConfig>;
};
