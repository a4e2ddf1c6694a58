/** A console API request refused: its HTTP status and why (sent as `{ "error": ... }`). */
export class Refused extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}
