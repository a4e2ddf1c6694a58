import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "@effect/vitest"
import { EventBridgeStandIn } from "../src/index.ts"

let standIn: EventBridgeStandIn.StandIn
let client: EventBridgeClient

beforeAll(async () => {
  standIn = await EventBridgeStandIn.start({ seed: 3 })
  client = new EventBridgeClient({
    region: "us-east-1",
    endpoint: standIn.url,
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
    maxAttempts: 1
  })
})
afterAll(async () => {
  client.destroy()
  await standIn.close()
})
beforeEach(() => standIn.reset())

const entry = (n: number, over: Record<string, unknown> = {}) => ({
  Source: "workos",
  DetailType: "dsync.user.created",
  Detail: JSON.stringify({ n }),
  EventBusName: "workos-events",
  Time: new Date(1_700_000_000_000 + n * 1000),
  ...over
})

/** A well-formed SigV4 header (the stand-in checks its shape, not the signature). */
const signed = {
  authorization: `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/events/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=${"a".repeat(64)}`,
  "x-amz-date": "20261123T190000Z",
  "x-amz-target": "AWSEvents.PutEvents",
  "content-type": "application/x-amz-json-1.1"
}

const raw = async (body: unknown, headers: Record<string, string> = signed) => {
  const response = await fetch(standIn.url, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body)
  })
  return { status: response.status, body: (await response.json()) as any }
}

describe("EventBridge stand-in", () => {
  it("takes PutEvents from the real AWS SDK client and stores the events in order", async () => {
    const output = await client.send(
      new PutEventsCommand({ Entries: [entry(1), entry(2), entry(3)] })
    )
    expect(output.FailedEntryCount).toBe(0)
    expect(output.Entries?.map((e) => e.EventId)).toEqual(standIn.events.map((e) => e.eventId))
    expect(standIn.events.map((e) => JSON.parse(e.detail).n)).toEqual([1, 2, 3])
    expect(standIn.events[0]).toMatchObject({
      source: "workos",
      detailType: "dsync.user.created",
      eventBusName: "workos-events",
      resources: [],
      time: 1_700_000_001
    })
    expect(standIn.entriesPerRequest).toEqual([3])
    expect(standIn.accessKeyIds).toEqual(["AKIDEXAMPLE"])
    expect(standIn.requestCount()).toBe(1)
  })

  it("checks the SigV4 Authorization header, the target and the content type", async () => {
    const { authorization: _, ...unsigned } = signed
    expect(await raw({ Entries: [entry(1)] }, unsigned)).toEqual({
      status: 400,
      body: {
        __type: "MissingAuthenticationTokenException",
        message: "Missing Authentication Token"
      }
    })
    const bad = await raw({ Entries: [entry(1)] }, { ...signed, authorization: "Bearer abc" })
    expect(bad.status).toBe(400)
    expect(bad.body.__type).toBe("IncompleteSignatureException")
    const noDate = await raw({ Entries: [entry(1)] }, { ...signed, "x-amz-date": "yesterday" })
    expect(noDate.body.__type).toBe("IncompleteSignatureException")
    const other = await raw({}, { ...signed, "x-amz-target": "AWSEvents.ListRules" })
    expect(other.body.__type).toBe("UnknownOperationException")
    const json = await raw(
      { Entries: [entry(1)] },
      { ...signed, "content-type": "application/json" }
    )
    expect(json.body.__type).toBe("SerializationException")
    expect(standIn.events).toHaveLength(0)
  })

  it("takes 1 to 10 entries and at most 1 MiB per request", async () => {
    expect((await raw({ Entries: [] })).body.__type).toBe("ValidationException")
    const eleven = Array.from({ length: 11 }, (_, i) => ({ ...entry(i), Time: 1_700_000_000 }))
    expect((await raw({ Entries: eleven })).body.__type).toBe("ValidationException")
    // Exactly 1 MiB by AWS's rule (14 for Time + Source + DetailType + Detail) is fine; a byte more is not.
    const fill = (total: number) => {
      const fixed = 14 + "workos".length + "t".length + '{"p":""}'.length
      return {
        Source: "workos",
        DetailType: "t",
        Detail: JSON.stringify({ p: "x".repeat(total - fixed) }),
        Time: 1
      }
    }
    expect((await raw({ Entries: [fill(EventBridgeStandIn.maxRequestBytes)] })).status).toBe(200)
    const over = await raw({ Entries: [fill(EventBridgeStandIn.maxRequestBytes + 1)] })
    expect(over.status).toBe(400)
    expect(over.body.message).toMatch(/1048577 > 1048576/)
    expect(standIn.events).toHaveLength(1)
  })

  it("applies the entry rules per entry and stores the valid ones", async () => {
    const output = await client.send(
      new PutEventsCommand({
        Entries: [
          entry(1),
          entry(2, { Detail: "not json" }),
          entry(3, { Detail: "[1,2]" }),
          entry(4, { DetailType: "x".repeat(129) }),
          entry(5, { Source: "aws.ec2" }),
          entry(6, { Detail: undefined }),
          entry(7)
        ]
      })
    )
    expect(output.FailedEntryCount).toBe(5)
    expect(output.Entries?.map((e) => e.ErrorCode ?? "ok")).toEqual([
      "ok",
      "MalformedDetail",
      "MalformedDetail",
      "InvalidArgument",
      "NotAuthorizedForSourceException",
      "InvalidArgument",
      "ok"
    ])
    expect(output.Entries?.[5]?.ErrorMessage).toMatch(/Detail is a required argument/)
    expect(standIn.events.map((e) => JSON.parse(e.detail).n)).toEqual([1, 7])
  })

  it("fails entries at random at the ratio asked, and chosen entries with chosen codes", async () => {
    standIn.setFaults({ internalFailureRatio: 0.3 })
    let failed = 0
    for (let r = 0; r < 100; r++) {
      const output = await client.send(
        new PutEventsCommand({ Entries: Array.from({ length: 10 }, (_, i) => entry(r * 10 + i)) })
      )
      failed += output.FailedEntryCount ?? 0
      expect(
        output.Entries?.filter((e) => e.ErrorCode !== undefined).every(
          (e) => e.ErrorCode === "InternalFailure"
        )
      ).toBe(true)
    }
    expect(failed).toBeGreaterThan(220)
    expect(failed).toBeLessThan(380)
    expect(standIn.events).toHaveLength(1_000 - failed)

    standIn.setFaults({
      failEntry: (e) =>
        String(e.Detail).includes('"n":2')
          ? { code: "MalformedDetail", message: "Detail is malformed." }
          : undefined
    })
    const output = await client.send(
      new PutEventsCommand({ Entries: [entry(1), entry(2), entry(3)] })
    )
    expect(output.Entries?.[1]).toEqual({
      ErrorCode: "MalformedDetail",
      ErrorMessage: "Detail is malformed."
    })
  })

  it("throttles, fails with 500 or refuses whole requests as AWS does", async () => {
    standIn.setFaults({ throttleRequests: 1 })
    const throttled = await client
      .send(new PutEventsCommand({ Entries: [entry(1)] }))
      .catch((e) => e)
    expect(throttled.name).toBe("ThrottlingException")
    expect(throttled.message).toBe("Rate exceeded")
    expect(throttled.$metadata.httpStatusCode).toBe(400)
    expect((await raw({ Entries: [entry(1)] })).status).toBe(200) // only one was asked for

    standIn.setFaults({ failRequests: 1 })
    const failed = await client.send(new PutEventsCommand({ Entries: [entry(1)] })).catch((e) => e)
    expect(failed.$metadata.httpStatusCode).toBe(500)
    expect(failed.name).toBe("InternalException")

    standIn.setFaults({
      afterRequests: 1,
      rejectRequests: { status: 400, code: "AccessDeniedException", message: "not allowed" }
    })
    expect((await raw({ Entries: [entry(1)] })).status).toBe(200)
    const denied = await client.send(new PutEventsCommand({ Entries: [entry(1)] })).catch((e) => e)
    expect(denied.name).toBe("AccessDeniedException")
    expect(denied.message).toBe("not allowed")
  })

  it("refuses chosen requests as a whole", async () => {
    standIn.setFaults({
      rejectRequest: (entries) =>
        entries.length > 1
          ? { status: 400, code: "ValidationException", message: "too many" }
          : undefined
    })
    const refused = await client
      .send(new PutEventsCommand({ Entries: [entry(1), entry(2)] }))
      .catch((e) => e)
    expect(refused.name).toBe("ValidationException")
    expect(
      (await client.send(new PutEventsCommand({ Entries: [entry(1)] }))).FailedEntryCount
    ).toBe(0)
    expect(standIn.events).toHaveLength(1)
  })

  it("answers slowly when asked", async () => {
    standIn.setFaults({ delayMillis: 200 })
    const started = Date.now()
    await client.send(new PutEventsCommand({ Entries: [entry(1)] }))
    expect(Date.now() - started).toBeGreaterThanOrEqual(190)
  })
})
