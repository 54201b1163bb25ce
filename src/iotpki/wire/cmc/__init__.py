"""CMC: Certificate Management over CMS (RFC 5272 structures, RFC 5273 transport, RFC 5274
compliance), as EST's Full PKI Requests (RFC 7030 §4.3) and plain-HTTP CMC use it.

- `request`: the Full PKI Request (SignedData(PKIData)), decoded and (client side) signed;
- `pki_data`: PKIData, its tagged requests and the control values iotpki reads;
- `signed_data`: CMS SignedData decoding and SignerInfo verification;
- `identity_proof`: the shared-secret witness of identityProofV2 / identityProof;
- `response`: PKIResponse with CMCStatusInfoV2, signed.
"""
