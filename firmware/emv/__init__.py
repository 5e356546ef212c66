"""The EMV kernel, terminal side: contact chip transactions from power on to the last script.

Pure logic over bytes; the only I/O goes through a `CardReader`. Start at
`kernel`: `run_transaction` takes a reader, a `transaction.TransactionInput`
and the kernel's services (configuration, CA keys, randomness, PIN entry,
the online callback) and returns one `result.TransactionResult`. A decline
or a failed offline data authentication is an outcome in that result;
malformed card data is an exception of `firmware.errors` naming the offset,
tag or status word.

Modules, by role:

Data encoding
    tlv              BER-TLV and Data Object Lists (Book 3 Annex B, 5.4)
    tags             data element names and formats, which tags are sensitive (Book 3 Annex A)
    apdu             command and response APDUs, one builder per EMV command, status words

Card link
    reader           the `CardReader` boundary (and its error contract); `PcscReader` over pcscd
    transport        one command in, one response out: 61xx / 6Cxx resolved, every exchange traced

Selection and reading
    selection        application selection: PSE directory or list of AIDs, then final selection
    application      GET PROCESSING OPTIONS and READ RECORD (Book 3 10.1, 10.2)
    carddata         the card's data objects the kernel hands on, checked against their format

Kernel
    kernel           the transaction, step by step (and its step modules)
    oda              offline data authentication: SDA, DDA, CDA (Book 2)
    certificates     recovery and checks of the RSA-signed ODA blocks
    cvm              cardholder verification: CVM list, offline and online PIN
    restrictions     processing restrictions: version, usage control, dates
    risk             terminal risk management: floor limit, random selection, velocity
    action           terminal and card action analysis (IAC / TAC against the TVR)
    genac            GENERATE AC command data and the card's answer
    online           the door to the acquirer host: `OnlineRequest` out, `OnlineResponse` back
    scripts          issuer scripts '71' / '72' and their results (9F5B)
    tvr              TVR (95) and TSI (9B) bits
    result           the one result of a transaction, with nothing sensitive in its dict or JSON
    transaction      what the caller asks of one transaction, and its numeric encodings

Configuration
    kernel_config    the kernel's terminal parameters (`firmware/data/kernel.json`)
    application_list the supported AIDs, each with its kernel parameters (selection, PDOL data)
    capk             Certification Authority public keys and their revocation list

Masking
    mask             PAN, track data, cardholder name and PIN as a person or a log may see them

Nothing here logs or returns a clear PAN, track data or PIN for display:
whatever a person or a log sees goes through `mask`.
"""
