/** The package's version, sent in the User-Agent. A test holds it equal to package.json's. */
export const version = "0.1.0"
