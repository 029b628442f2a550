import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { z } from 'zod';
import { applyContract, listContractVersions, loadContractHistory } from '../../db/contracts';
import { ContractSchema, formatZodIssues, type ContractVersion } from '../../domain/contract';
import { diffContracts, versionForRun, versionInEffectAt, type ContractHistory } from '../../domain/contract-history';
import { ReconError } from '../../domain/errors';
import { CellNameOrDefault } from '../../domain/cells';
import { placeTenant } from '../../cells/admin';
import type { CommandContext } from '../context';
import { formatTable, plural } from '../format';
import { InstantOpt, TenantOpt, emit, parseOptions } from '../io';

/** Reads and validates a contract file: every rule of ContractSchema, problems named by JSON path. */
export async function readContractFile(file: string) {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ReconError(
      'invalid_contract',
      `${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not valid JSON: ${(err as Error).message}`}`,
    );
  }
  const parsed = ContractSchema.safeParse(json);
  if (!parsed.success) throw new ReconError('invalid_contract', `${file}: ${formatZodIssues(parsed.error)}`);
  return parsed.data;
}

const VersionOpt = z.coerce.number().int().min(1, 'expected a version number such as 2');

function versionNumbered(h: ContractHistory, n: number): ContractVersion {
  const v = h.versions.find((x) => x.version === n);
  if (!v) {
    throw new ReconError(
      'unknown_contract_version',
      `tenant ${h.tenant} has no contract version ${n} (it has ${h.versions
        .map((x) => x.version)
        .sort((a, b) => a - b)
        .join(', ')}); see \`recon contract list --tenant ${h.tenant}\``,
    );
  }
  return v;
}

const shown = (v: unknown) => (v === undefined ? '(none)' : JSON.stringify(v));

export function registerContractCommands(program: Command, ctx: CommandContext): void {
  const contract = program.command('contract').description('tenant contracts and their versions');
  contract
    .command('apply <file>')
    .description('validate a contract JSON file and store it as a new version (same file again: no change)')
    .option('--cell <name>', 'for a new tenant: the cell it is placed in (default: the default cell)')
    .action(async (file: string, o: { cell?: string }, cmd: Command) => {
      const c = await readContractFile(file);
      if (o.cell) await placeTenant(ctx.cells(), c.tenant, parseOptions(CellNameOrDefault, o.cell));
      const cell = await ctx.routeToTenant(c.tenant);
      const r = await ctx.cells().within(cell, (pool) => applyContract(pool, c));
      emit(cmd.optsWithGlobals(), r, () =>
        r.created
          ? `tenant ${r.tenant}: contract version ${r.version} effective from ${r.effectiveFrom}`
          : `tenant ${r.tenant}: identical to version ${r.version}; nothing changed`,
      );
    });

  contract
    .command('list')
    .description("the tenant's contract versions: effective from, applied at, currency, outcome types")
    .requiredOption('--tenant <tenant>', 'tenant id')
    .action(async (o: unknown, cmd: Command) => {
      const { tenant } = parseOptions(z.object({ tenant: TenantOpt }), o);
      const versions = await listContractVersions(ctx.db(), tenant);
      emit(cmd.optsWithGlobals(), versions, () =>
        formatTable(
          versions.map((v) => ({
            version: v.version,
            effectiveFrom: v.effectiveFrom,
            appliedAt: v.appliedAt,
            currency: v.currency,
            timezone: v.timezone,
            outcomeTypes: v.outcomeTypes.join(', '),
          })),
        ),
      );
    });

  // The version is an argument, not --version: commander gives --version to the program wherever
  // it appears once the program has one, so `contract show --version 2` would print recon's.
  contract
    .command('show [version]')
    .description(
      'the JSON of one contract version: by number, in effect --at a time, or (default) in effect now, else the first',
    )
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--at <time>', 'the version in effect at this ISO 8601 time, e.g. 2026-03-01T00:00:00Z')
    .action(async (version: string | undefined, o: Record<string, unknown>, cmd: Command) => {
      const a = parseOptions(
        z.object({ tenant: TenantOpt, version: VersionOpt.optional(), at: InstantOpt.optional() }),
        { ...o, version },
      );
      if (a.version !== undefined && a.at !== undefined)
        throw new ReconError('bad_input', 'give a version number or --at, not both');
      const h = await loadContractHistory(ctx.db(), a.tenant);
      // Without a choice: the version in effect now, or for a tenant whose first version starts
      // later, that one (what will apply); --at a time before the first version is an error.
      const v =
        a.version !== undefined
          ? versionNumbered(h, a.version)
          : a.at !== undefined
            ? versionForRun(h, a.at)
            : (versionInEffectAt(h, new Date()) ?? h.versions[0]);
      const out = {
        tenant: a.tenant,
        version: v.version,
        effectiveFrom: v.effectiveFrom.toISOString(),
        appliedAt: v.appliedAt?.toISOString() ?? null,
        body: v.body,
      };
      // The body is what a person edits and applies again: stdout holds only its JSON, so
      // `recon contract show ... > next.json` is a file `contract apply` takes; which version it is goes to stderr.
      if (!cmd.optsWithGlobals().json)
        process.stderr.write(
          `tenant ${a.tenant}: version ${v.version}, effective from ${out.effectiveFrom}, applied ${out.appliedAt}\n`,
        );
      emit(cmd.optsWithGlobals(), out, () => JSON.stringify(v.body, null, 2));
    });

  contract
    .command('diff')
    .description('what changed between two versions, as JSON paths with old and new values (default: the last two)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--from <n>', 'older version number')
    .option('--to <n>', 'newer version number')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(
        z.object({ tenant: TenantOpt, from: VersionOpt.optional(), to: VersionOpt.optional() }),
        o,
      );
      const h = await loadContractHistory(ctx.db(), a.tenant);
      const numbers = h.versions.map((v) => v.version).sort((x, y) => x - y);
      const to = a.to ?? (a.from !== undefined ? numbers.find((n) => n > a.from!) : numbers[numbers.length - 1]);
      const from = a.from ?? (to !== undefined ? [...numbers].reverse().find((n) => n < to) : undefined);
      if (numbers.length < 2)
        throw new ReconError(
          'bad_input',
          `tenant ${a.tenant} has one contract version (${numbers[0]}): nothing to compare yet`,
        );
      if (to === undefined)
        throw new ReconError(
          'bad_input',
          `version ${a.from} is the newest of tenant ${a.tenant}: give --to with the version to compare it with`,
        );
      if (from === undefined)
        throw new ReconError(
          'bad_input',
          `version ${to} is the oldest of tenant ${a.tenant}: give --from with the version to compare it with`,
        );
      const older = versionNumbered(h, from);
      const newer = versionNumbered(h, to);
      const changes = diffContracts(older.body, newer.body);
      const out = { tenant: a.tenant, from, to, changes };
      emit(cmd.optsWithGlobals(), out, () =>
        [
          `tenant ${a.tenant}: version ${from} → ${to}, ${plural(changes.length, 'change')}`,
          ...changes.map(
            (c) =>
              `  ${c.path}: ${c.old === undefined ? `added ${shown(c.new)}` : c.new === undefined ? `removed (was ${shown(c.old)})` : `${shown(c.old)} → ${shown(c.new)}`}`,
          ),
        ].join('\n'),
      );
    });
}
