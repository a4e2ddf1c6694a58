/**
 * `mirror bootstrap` leaves no gap: it fills the tables from WorkOS's lists while
 * events keep being created, sets the mirror sink's checkpoint to the time the lists
 * were read, and `run` then delivers from there. The tables end equal to the
 * stand-in's state. A sink that already has a checkpoint is refused without --force.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Mapping, Reconcile } from "@workos-relay/sink-mirror"
import { WorkOSStandIn, type WorkOSState } from "@workos-relay/testing"
// The mirror's own workload: objects with ids never reused, as WorkOS's (the stand-in's
// generated events cycle through the spec examples' few ids, deleted ones included).
import { history } from "../../../packages/sink-mirror/test/workload.ts"
import { tempDir, waitUntilAsync } from "./helpers.ts"

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")

const cli = (args: ReadonlyArray<string>) => {
  const child = spawn(process.execPath, ["--conditions=@workos-relay/source", bin, ...args], {
    env: { ...process.env, TEST_KEY: standIn.apiKey },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const proc = { child, stdout: "", stderr: "", exited: undefined as unknown as Promise<number> }
  child.stdout.on("data", (d) => (proc.stdout += d))
  child.stderr.on("data", (d) => (proc.stderr += d))
  proc.exited = new Promise((resolve) => child.on("exit", (code) => resolve(code ?? -1)))
  return proc
}

let standIn: WorkOSStandIn.StandIn
beforeAll(async () => {
  standIn = await WorkOSStandIn.start({ events: 0 })
})
afterAll(() => standIn.close())

const checkpointOf = (state: string): string | undefined => {
  if (!Fs.existsSync(state)) return undefined
  const db = new DatabaseSync(state, { readOnly: true })
  try {
    return (
      db.prepare("SELECT cursor FROM relay_checkpoints WHERE sink = 'mirror'").get() as
        | { cursor: string }
        | undefined
    )?.cursor
  } catch {
    return undefined
  } finally {
    db.close()
  }
}

/** Keys in order, so two objects compare by content. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_, v) =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v
  )

describe("mirror bootstrap", () => {
  it("fills the tables while events are created, sets the checkpoint, and run leaves no gap", async () => {
    const dir = tempDir("mirror-bootstrap-")
    const config = Path.join(dir, "relay.yaml")
    const database = Path.join(dir, "mirror.db")
    Fs.writeFileSync(
      config,
      `source:
  type: workos
  apiKey: \${TEST_KEY}
  baseUrl: ${standIn.url}
  start: latest
  pollInterval: 50ms
state:
  sqlite: ./state.db
shutdownTimeout: 2s
sinks:
  mirror:
    type: mirror
    path: ${JSON.stringify(database)}
`
    )
    const events = history(3000, 41).map((e) => ({
      event: e.event,
      data: (e as { data: unknown }).data
    }))
    standIn.append(events.slice(0, 1500))
    // Events keep coming while the lists are read.
    let appended = 1500
    const trickle = setInterval(() => {
      if (appended >= 2800) return
      standIn.append(events.slice(appended, appended + 4))
      appended += 4
    }, 5)
    const boot = cli(["mirror", "bootstrap", "-c", config])
    const code = await boot.exited
    const appendedDuring = appended - 1500
    clearInterval(trickle)
    standIn.append(events.slice(appended))
    expect(code, boot.stderr).toBe(0)
    expect(appendedDuring).toBeGreaterThan(0)
    const since = /checkpoint of sink mirror set to (\S+):/.exec(boot.stdout)?.[1]
    expect(since, boot.stdout).toBeDefined()
    expect(checkpointOf(Path.join(dir, "state.db"))).toBe(since)

    // A second bootstrap is refused (exit 2) before it reads anything.
    const again = cli(["mirror", "bootstrap", "-c", config])
    expect(await again.exited).toBe(2)
    expect(again.stderr).toContain("sink mirror already has a checkpoint")

    // The source fetches only the types the mirror asks for: the last of those ends the run.
    const lastId = standIn
      .events()
      .filter((e) => Mapping.eventTypes.includes(e.event))
      .at(-1)!.id
    const relay = cli(["run", "-c", config])
    await waitUntilAsync(
      "the mirror caught up",
      () => checkpointOf(Path.join(dir, "state.db")) === lastId,
      60_000
    )
    relay.child.kill("SIGTERM")
    expect(await relay.exited, relay.stderr).toBe(0)

    const db = new DatabaseSync(database, { readOnly: true })
    try {
      // An organization's domains are kept as rows of their own (its object keeps the
      // domains of its last organization event): compared as the domains table.
      const organizations = standIn.state.objects("organizations")
      const withoutDomains = ({ domains: _, ...o }: Record<string, unknown>) => o
      const expectedOf = {
        organizations: organizations.map(withoutDomains),
        organization_domains: Reconcile.domainsOf(organizations),
        // The users each live group lists (`/directory_users?group=`).
        directory_group_memberships: standIn.state.objects("directory_groups").flatMap((g) =>
          standIn.state
            .groupMembers(g.id)
            .filter((u) => standIn.state.objects("directory_users").some((du) => du.id === u))
            .map((u) => Reconcile.groupMembership(g, u))
        )
      } as Record<string, ReadonlyArray<Record<string, unknown>>>
      for (const table of [
        "organizations",
        "organization_domains",
        "users",
        "organization_memberships",
        "directories",
        "directory_users",
        "directory_groups",
        "directory_group_memberships",
        "connections"
      ] as const) {
        const rows = db
          .prepare(`SELECT id, object FROM workos_${table} WHERE deleted_at IS NULL ORDER BY id`)
          .all() as Array<{ id: string; object: string }>
        const deleted = (parents: string) =>
          new Set(
            (
              db
                .prepare(`SELECT id FROM workos_${parents} WHERE deleted_at IS NOT NULL`)
                .all() as Array<{ id: string }>
            ).map((r) => r.id)
          )
        // Deleting an organization or a directory drops its children at WorkOS without
        // an event for each; the mirror cascades them, but a child event created after
        // the parent's delete (this history has some) keeps its row live: left out.
        const parents =
          (
            {
              organization_domains: [["organizations", "organization_id"]],
              organization_memberships: [["organizations", "organization_id"]],
              directory_users: [["directories", "directory_id"]],
              directory_groups: [["directories", "directory_id"]],
              directory_group_memberships: [
                ["directories", "directory_id"],
                ["directory_groups", "group_id"],
                ["directory_users", "user_id"]
              ]
            } as Record<string, Array<[string, string]>>
          )[table] ?? []
        const gone = parents.map(([t, field]) => [deleted(t), field] as const)
        // Live rows of a table whose directory is live too.
        const live = (t: string) => {
          const goneDirectories = deleted("directories")
          return new Set(
            (
              db
                .prepare(`SELECT id, directory_id FROM workos_${t} WHERE deleted_at IS NULL`)
                .all() as Array<{ id: string; directory_id: string }>
            )
              .filter((r) => !goneDirectories.has(r.directory_id))
              .map((r) => r.id)
          )
        }
        // A membership counts while its group and its user are live rows (WorkOS lists
        // the live users of a group; the history adds some users after their deletion).
        const [liveGroups, liveUsers] =
          table === "directory_group_memberships"
            ? [live("directory_groups"), live("directory_users")]
            : [undefined, undefined]
        const orphan = (object: Record<string, unknown>) =>
          gone.some(([ids, field]) => ids.has(String(object[field]))) ||
          (liveGroups !== undefined &&
            (!liveGroups.has(String(object.group_id)) || !liveUsers!.has(String(object.user_id))))
        const mirrored = Object.fromEntries(
          rows.flatMap((r) => {
            const object = JSON.parse(r.object)
            if (orphan(object)) return []
            return [[r.id, canonical(table === "organizations" ? withoutDomains(object) : object)]]
          })
        )
        const expected = Object.fromEntries(
          (expectedOf[table] ?? standIn.state.objects(table as WorkOSState.ListName)).map((o) => [
            Reconcile.keyOf(table, o),
            canonical(o)
          ])
        )
        expect(Object.keys(mirrored).length, table).toBe(Object.keys(expected).length)
        expect(mirrored, table).toEqual(expected)
      }
    } finally {
      db.close()
    }

    // A fresh mirror file for a sink that has a checkpoint: refused, then --force moves it.
    const fresh = Path.join(dir, "fresh.db")
    Fs.writeFileSync(
      config,
      Fs.readFileSync(config, "utf8").replace(JSON.stringify(database), JSON.stringify(fresh))
    )
    const refused = cli(["mirror", "bootstrap", "-c", config])
    expect(await refused.exited).toBe(2)
    expect(refused.stderr).toContain("pass --force")
    expect(checkpointOf(Path.join(dir, "state.db"))).toBe(lastId)
    const forced = cli(["mirror", "bootstrap", "-c", config, "--force"])
    expect(await forced.exited, forced.stderr).toBe(0)
    const moved = /checkpoint of sink mirror set to (\S+):/.exec(forced.stdout)?.[1]
    expect(moved! > since!).toBe(true)
    expect(checkpointOf(Path.join(dir, "state.db"))).toBe(moved)
  }, 120_000)
})

/** Rows of the mirror's tables, live and deleted; 0 when the file is not there yet. */
const mirrorRows = (database: string): number => {
  if (!Fs.existsSync(database)) return 0
  const db = new DatabaseSync(database, { readOnly: true })
  try {
    return (
      db
        .prepare(
          "SELECT (SELECT count(*) FROM workos_users) + (SELECT count(*) FROM workos_organizations) + (SELECT count(*) FROM workos_directory_users) AS n"
        )
        .get() as { n: number }
    ).n
  } finally {
    db.close()
  }
}

describe("mirror bootstrap against a running runner", () => {
  it("is refused while a runner holds the lease, saying which; the checkpoint and the tables stay; after it stops, bootstrap runs", async () => {
    const dir = tempDir("mirror-fence-")
    const config = Path.join(dir, "relay.yaml")
    const database = Path.join(dir, "mirror.db")
    const state = Path.join(dir, "state.db")
    Fs.writeFileSync(
      config,
      `source:
  type: workos
  apiKey: \${TEST_KEY}
  baseUrl: ${standIn.url}
  start: latest
  pollInterval: 50ms
state:
  sqlite: ./state.db
  leaseTtl: 5s
shutdownTimeout: 2s
sinks:
  mirror:
    type: mirror
    path: ${JSON.stringify(database)}
`
    )
    const relay = cli(["run", "-c", config])
    await waitUntilAsync(
      "the runner holds the lease",
      () => relay.stderr.includes("relaying to"),
      60_000
    )
    // The start is saved as the checkpoint just after the lane starts: wait for it.
    const saved = () => {
      try {
        return checkpointOf(state) !== undefined
      } catch {
        return false // the runner is writing: ask again
      }
    }
    await waitUntilAsync("the runner saved its start", saved, 60_000)
    const before = checkpointOf(state)

    for (const args of [[], ["--force"]]) {
      const boot = cli(["mirror", "bootstrap", "-c", config, ...args])
      expect(await boot.exited, boot.stderr).toBe(2)
      expect(boot.stderr).toMatch(
        new RegExp(
          `the runner \\S+:${relay.child.pid}:\\S+ \\(lease token \\d+, renewed until [^)]+\\) holds the lease of the state store sqlite:`
        )
      )
      expect(boot.stderr).toContain("stop it")
      expect(boot.stdout).not.toContain("filled mirror")
    }
    // Nothing moved: the runner's checkpoint, and no row filled from the lists.
    expect(checkpointOf(state)).toBe(before)
    expect(mirrorRows(database)).toBe(0)
    // The runner never lost its lease to the refused bootstraps.
    expect(relay.child.exitCode).toBeNull()
    expect(relay.stderr).not.toContain("taken over")

    relay.child.kill("SIGTERM")
    expect(await relay.exited, relay.stderr).toBe(0)
    standIn.append(
      history(40, 99).map((e) => ({ event: e.event, data: (e as { data: unknown }).data }))
    )
    const boot = cli(["mirror", "bootstrap", "-c", config, "--force"])
    expect(await boot.exited, boot.stderr).toBe(0)
    const since = /checkpoint of sink mirror set to (\S+):/.exec(boot.stdout)?.[1]
    expect(checkpointOf(state)).toBe(since)
    expect(mirrorRows(database)).toBeGreaterThan(0)
    // Given back as bootstrap ended: a runner starts at once, not as a standby.
    const next = cli(["run", "-c", config])
    await waitUntilAsync(
      "the next runner holds the lease",
      () => next.stderr.includes("relaying to"),
      60_000
    )
    expect(next.stderr).not.toContain("hot standby")
    next.child.kill("SIGTERM")
    expect(await next.exited, next.stderr).toBe(0)
  }, 120_000)
})

describe("mirror reconcile.every", () => {
  it("validate checks it; run reconciles on that schedule and logs each round", async () => {
    const dir = tempDir("mirror-every-")
    const config = Path.join(dir, "relay.yaml")
    const database = Path.join(dir, "mirror.db")
    const write = (every: string) =>
      Fs.writeFileSync(
        config,
        `source:
  type: workos
  apiKey: \${TEST_KEY}
  baseUrl: ${standIn.url}
  start: latest
  pollInterval: 50ms
state:
  sqlite: ./state.db
shutdownTimeout: 2s
sinks:
  mirror:
    type: mirror
    path: ${JSON.stringify(database)}
    reconcile:
      every: ${every}
`
      )
    write("soon")
    const invalid = cli(["validate", "-c", config])
    expect(await invalid.exited).toBe(2)
    expect(invalid.stderr + invalid.stdout).toMatch(
      /sinks\.mirror\.reconcile\.every.*expected a duration/
    )

    write("1s")
    // Objects the events never tell about (lost): only a reconcile brings them in.
    const lost = history(300, 77).map((e) => ({
      event: e.event,
      data: (e as { data: unknown }).data
    }))
    standIn.appendUnseen(lost)
    const relay = cli(["run", "-c", config])
    await waitUntilAsync(
      "a scheduled reconcile",
      () => relay.stderr.includes("mirror mirror: reconciled"),
      60_000
    )
    relay.child.kill("SIGTERM")
    expect(await relay.exited, relay.stderr).toBe(0)
    const db = new DatabaseSync(database, { readOnly: true })
    try {
      const users = db
        .prepare("SELECT id FROM workos_users WHERE deleted_at IS NULL")
        .all() as Array<{ id: string }>
      const listed = new Set(standIn.state.objects("users").map((u) => u.id))
      const lostUsers = lost
        .filter((e) => e.event === "user.created")
        .map((e) => (e.data as { id: string }).id)
        .filter((id) => listed.has(id))
      expect(lostUsers.length).toBeGreaterThan(0)
      const ids = new Set(users.map((u) => u.id))
      expect(lostUsers.filter((id) => !ids.has(id))).toEqual([])
    } finally {
      db.close()
    }
  }, 120_000)
})
