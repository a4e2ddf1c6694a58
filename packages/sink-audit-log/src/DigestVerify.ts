/**
 * `audit verify --digests DIR --public-key KEY`: checks a store against its signed
 * digests (see Digest). Plain `verify` proves the records still link from the anchor to
 * the head the store names; the digests prove that anchor and head are ones the sink
 * signed, so a tail cut with the head moved back, a prefix cut with the anchor moved
 * forward (without a signed retention note), a wipe, or a chain rewritten from some
 * record on are each found, with the digest they contradict. Retention signs its note
 * before it cuts, so a chain still starting where the last note's cut began is fine
 * (a cut announced, not yet made).
 */
import type * as crypto from "node:crypto"
import * as Effect from "effect/Effect"
import type * as Chain from "./Chain.ts"
import * as Digest from "./Digest.ts"
import type { Shape, StoreError } from "./Store.ts"

export type DigestProblemKind =
  | "signature"
  | "digest-chain"
  | "chain"
  | "truncated"
  | "prefix-deleted"
  | "wiped"
  | "rewritten"

export interface DigestProblem {
  readonly kind: DigestProblemKind
  /** The digest contradicted (its number), or null. */
  readonly digest: number | null
  readonly message: string
}

export interface DigestReport {
  /** How many digests were read (and their signatures checked). */
  readonly digests: number
  /** The plain chain walk. */
  readonly chain: Chain.Report
  readonly problems: ReadonlyArray<DigestProblem>
}

/** Checks the digest files themselves: signatures, numbering, and the links between them. */
const checkDigests = (
  digests: ReadonlyArray<{ file: string; digest: Digest.Digest }>,
  key: crypto.KeyObject
): Array<DigestProblem> => {
  const problems: Array<DigestProblem> = []
  let previous: Digest.Digest | undefined
  for (const { file, digest } of digests) {
    if (!Digest.signatureHolds(digest, key)) {
      problems.push({
        kind: "signature",
        digest: digest.n,
        message: `${file}: the signature does not hold for this public key (the digest was changed or forged)`
      })
    }
    const expectedN = (previous?.n ?? 0) + 1
    if (digest.n !== expectedN) {
      problems.push({
        kind: "digest-chain",
        digest: digest.n,
        message: `${file}: digest ${digest.n} follows digest ${previous?.n ?? "(none)"}: digest(s) from ${expectedN} are missing`
      })
    } else if (digest.previous !== (previous === undefined ? null : Digest.digestHash(previous))) {
      problems.push({
        kind: "digest-chain",
        digest: digest.n,
        message: `${file}: digest ${digest.n} does not link to digest ${previous?.n ?? "(none)"} (its previous hash differs)`
      })
    }
    previous = digest
  }
  return problems
}

export const verify = (
  store: Shape,
  digests: ReadonlyArray<{ file: string; digest: Digest.Digest }>,
  key: crypto.KeyObject
): Effect.Effect<DigestReport, StoreError> =>
  Effect.gen(function* () {
    const problems = checkDigests(digests, key)
    const chain = yield* store.verify
    if (chain.problem !== null) {
      problems.push({ kind: "chain", digest: null, message: chain.problem.message })
    }
    const state = yield* store.head
    // Every kept record's hash by seq (the whole store in memory: a hash per record).
    const hashes = new Map<number, string>()
    for (const r of yield* store.query({ limit: Number.MAX_SAFE_INTEGER }))
      hashes.set(r.seq, r.hash)
    const newest = Math.max(0, ...hashes.keys())
    const anchor = state?.anchor ?? { seq: 0, hash: "" }

    // What retention removed, by its signed notes: the chain may start after that, no later.
    const notes = digests.filter((d) => d.digest.kind === "retention").map((d) => d.digest)
    const lastNote = notes.at(-1)
    const cut = lastNote?.anchor.seq ?? 0
    if (anchor.seq > cut) {
      const contradicted = digests.find((d) => d.digest.seq > cut)?.digest
      problems.push({
        kind: "prefix-deleted",
        digest: contradicted?.n ?? null,
        message: `records #${cut + 1} to #${anchor.seq} were removed without a signed retention note: the store's chain now starts after #${anchor.seq}, but ${contradicted === undefined ? "no digest" : `digest ${contradicted.n}`} covers records from #${cut + 1}`
      })
    } else if (
      lastNote !== undefined &&
      !(anchor.seq === cut && anchor.hash === lastNote.anchor.hash)
    ) {
      // The note is written before the cut: a crash between the two leaves the chain
      // starting where the note says the cut began (the next pass makes the cut).
      const from = lastNote.removed?.from
      const pending = from !== undefined && anchor.seq === from.seq && anchor.hash === from.hash
      if (!pending) {
        // Moved past where the announced cut began, but not to its end: a cut of its own.
        const cutElsewhere = from !== undefined && anchor.seq > from.seq && anchor.seq < cut
        problems.push({
          kind: cutElsewhere ? "prefix-deleted" : "rewritten",
          digest: lastNote.n,
          message: `the store's anchor (#${anchor.seq}, ${anchor.hash}) is neither the one retention note digest ${lastNote.n} signed (#${lastNote.anchor.seq}, ${lastNote.anchor.hash}) nor where its cut began${from === undefined ? "" : ` (#${from.seq}, ${from.hash})`}`
        })
      }
    }

    for (const { digest: d } of digests) {
      // Records up to the anchor were removed by retention (checked above); the anchor is
      // the hash of the last of them.
      if (d.seq <= anchor.seq) continue
      const hash = hashes.get(d.seq)
      if (hash === d.hash) continue
      if (hash !== undefined) {
        problems.push({
          kind: "rewritten",
          digest: d.n,
          message: `record #${d.seq} has hash ${hash}, but digest ${d.n} (${d.time}) signed ${d.hash}: the chain was rewritten`
        })
      } else if (hashes.size === 0) {
        problems.push({
          kind: "wiped",
          digest: d.n,
          message: `the store holds no records, but digest ${d.n} (${d.time}) covers records up to #${d.seq}`
        })
      } else if (d.seq > newest) {
        problems.push({
          kind: "truncated",
          digest: d.n,
          message: `the store ends at record #${newest}, but digest ${d.n} (${d.time}) covers records up to #${d.seq} (${d.hash})`
        })
      } else {
        problems.push({
          kind: "rewritten",
          digest: d.n,
          message: `record #${d.seq}, the head digest ${d.n} (${d.time}) signed, is missing`
        })
      }
    }
    if (digests.length === 0) {
      problems.push({
        kind: "digest-chain",
        digest: null,
        message: "no digest files to check against"
      })
    }
    return { digests: digests.length, chain, problems: dedupe(problems) }
  })

/** One problem per kind and digest, at most 20 (the first say enough). */
const dedupe = (problems: ReadonlyArray<DigestProblem>): Array<DigestProblem> => {
  const seen = new Set<string>()
  const out: Array<DigestProblem> = []
  for (const p of problems) {
    const key = `${p.kind}:${p.digest}`
    if (seen.has(key)) continue
    seen.add(key)
    if (out.length < 20) out.push(p)
  }
  return out
}
