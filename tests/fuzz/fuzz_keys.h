/* The JWKS the sender authentication fuzzers verify against (public keys only; the seed tokens in
 * tests/fuzz/corpus/jwt and corpus/ingress/auth-* were signed with their private halves, which were
 * thrown away), the issuer and the time those seeds are valid at. */
#ifndef CEB_FUZZ_KEYS_H
#define CEB_FUZZ_KEYS_H

#define FUZZ_ISSUER   "https://issuer.fuzz"
#define FUZZ_AUDIENCE "eventing.knative.dev/broker/auth/guarded"
#define FUZZ_NOW      1800000000 /* the seeds expire in 2100, one has expired by then */

static const char fuzz_jwks[] =
        "{\"keys\": [{\"kty\": \"RSA\", \"kid\": \"fuzz-rsa\", \"use\": \"sig\", \"alg\": \"RS256"
        "\", \"n\": \"u7y-oUYinpOPHBFlwqvd1uLO5hqQZoDhc4bL4AsbxqOlVJVW2hXCfSEp53RUu07VZmccvC_0jWm"
        "hJR-z_R10BzT4Jpsx9PB2Tf12V6svEWhjVCgJykJN8FF8Oz1PeGm0ZVTIhlVBfd2XXfdRxjLLKD9ZcVvKe7nhbOL"
        "ex1sIVF5g2fMXWBpMEcSbxpHnub0lb8E_nxCcWdJyq03wCwInLgEcBjlpqRxKGLE9XZ0gEknGuQ-bQXIXBM39o62"
        "RTN5Ydr_5OLPKXYFXHSa8Ou9xniSzRWPLVj2G7YSVXB017Pu4aSM4-ktOhZSv43jQZ3-FcjLKUxQx1ioPJFC3M8Q"
        "NEQ\", \"e\": \"AQAB\"}, {\"kty\": \"EC\", \"kid\": \"fuzz-ec\", \"crv\": \"P-256\", \"x"
        "\": \"6YeqejY-TwYIhSAXvK6BRk3j-U5zyBDWMtUfKt-AMvA\", \"y\": \"q_IwJo6Tx_Uefj5j46UInjtC-G"
        "d3X574uOdPrpRWRv4\"}]}";

#endif
