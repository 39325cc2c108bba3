/*
 * OpenSSL (libssl.so.3 and libcrypto.so.3), loaded on first use — the way lazy.c loads
 * libcurl and libsystemd, but without a C wrapper per function: each function certreload
 * calls is a two-instruction trampoline here, `jmp *slot`. A slot first points to a stub
 * that saves the argument registers, has certreload_openssl_load() dlopen libssl and fill
 * every slot with the real address (dlvsym, version OPENSSL_3.0.0), and jumps on. After
 * that, a call costs one indirect jump.
 *
 * Why: Debian builds libcrypto with -z now, so linking it costs every process 4,891 symbol
 * lookups before main — 5.7 M of the 6.1 M instructions of `certreload --version` — even
 * for commands that never touch a certificate (help, --version, config check). Commands that
 * do (check, deploy, watch) pay the same lookups at the first call instead.
 *
 * The trampolines are hidden: libcrypto must never bind its own calls to them. A function
 * not listed here fails to link ("undefined reference"): add a LAZY line (keep them sorted).
 * x86_64 only; on other machines Package.swift links OpenSSL as usual and this file is empty.
 */
#if defined(__x86_64__) && defined(__linux__)

    .macro LAZY name
    .pushsection .data.rel.certreload_openssl_slots, "aw"
    .p2align 3
slot_\name:
    .quad stub_\name
    .popsection
    .pushsection .data.rel.ro.certreload_openssl_names, "aw"
    .quad name_\name
    .popsection
    .pushsection .rodata.str1.1, "aMS", @progbits, 1
name_\name:
    .asciz "\name"
    .popsection
    .text
    .globl \name
    .hidden \name
    .type \name, @function
    .p2align 4
\name:
    jmpq *slot_\name(%rip)
stub_\name:
    leaq slot_\name(%rip), %r11
    jmp certreload_openssl_resolve
    .size \name, .-\name
    .endm

    /* The slots and the names are two parallel arrays, bounded by these labels. */
    .pushsection .data.rel.certreload_openssl_slots, "aw"
    .p2align 3
    .globl certreload_openssl_slots
    .hidden certreload_openssl_slots
certreload_openssl_slots:
    .popsection
    .pushsection .data.rel.ro.certreload_openssl_names, "aw"
    .p2align 3
    .globl certreload_openssl_names
    .hidden certreload_openssl_names
certreload_openssl_names:
    .popsection

    /* Called from a stub with %r11 = its slot; every argument register still as the caller
     * left it. Saves them (and %rax: the vector count of a varargs call), loads, restores,
     * and jumps through the now-filled slot. */
    .text
    .p2align 4
    .type certreload_openssl_resolve, @function
certreload_openssl_resolve:
    pushq %rbp
    movq %rsp, %rbp
    pushq %rdi
    pushq %rsi
    pushq %rdx
    pushq %rcx
    pushq %r8
    pushq %r9
    pushq %rax
    pushq %r11
    subq $128, %rsp
    movdqu %xmm0, 0(%rsp)
    movdqu %xmm1, 16(%rsp)
    movdqu %xmm2, 32(%rsp)
    movdqu %xmm3, 48(%rsp)
    movdqu %xmm4, 64(%rsp)
    movdqu %xmm5, 80(%rsp)
    movdqu %xmm6, 96(%rsp)
    movdqu %xmm7, 112(%rsp)
    call certreload_openssl_load
    movdqu 0(%rsp), %xmm0
    movdqu 16(%rsp), %xmm1
    movdqu 32(%rsp), %xmm2
    movdqu 48(%rsp), %xmm3
    movdqu 64(%rsp), %xmm4
    movdqu 80(%rsp), %xmm5
    movdqu 96(%rsp), %xmm6
    movdqu 112(%rsp), %xmm7
    addq $128, %rsp
    popq %r11
    popq %rax
    popq %r9
    popq %r8
    popq %rcx
    popq %rdx
    popq %rsi
    popq %rdi
    popq %rbp
    jmpq *(%r11)
    .size certreload_openssl_resolve, .-certreload_openssl_resolve

    LAZY ASN1_ANY_it
    LAZY ASN1_BIT_STRING_free
    LAZY ASN1_INTEGER_set
    LAZY ASN1_STRING_free
    LAZY ASN1_STRING_get0_data
    LAZY ASN1_STRING_length
    LAZY ASN1_STRING_set
    LAZY ASN1_STRING_type_new
    LAZY ASN1_TIME_set
    LAZY ASN1_TIME_to_tm
    LAZY ASN1_TYPE_free
    LAZY ASN1_TYPE_new
    LAZY ASN1_TYPE_set
    LAZY ASN1_item_verify_ex
    LAZY BIO_ctrl
    LAZY BIO_ctrl_pending
    LAZY BIO_free
    LAZY BIO_new
    LAZY BIO_new_mem_buf
    LAZY BIO_read
    LAZY BIO_s_mem
    LAZY BIO_write
    LAZY CRYPTO_free
    LAZY ERR_clear_error
    LAZY ERR_clear_last_mark
    LAZY ERR_error_string_n
    LAZY ERR_get_error
    LAZY ERR_new
    LAZY ERR_pop_to_mark
    LAZY ERR_set_debug
    LAZY ERR_set_error
    LAZY ERR_set_mark
    LAZY EVP_Digest
    LAZY EVP_PKEY_CTX_free
    LAZY EVP_PKEY_CTX_new_id
    LAZY EVP_PKEY_CTX_set_ec_paramgen_curve_nid
    LAZY EVP_PKEY_CTX_set_rsa_keygen_bits
    LAZY EVP_PKEY_eq
    LAZY EVP_PKEY_free
    LAZY EVP_PKEY_get_base_id
    LAZY EVP_PKEY_get_bits
    LAZY EVP_PKEY_get_group_name
    LAZY EVP_PKEY_keygen
    LAZY EVP_PKEY_keygen_init
    LAZY EVP_aes_128_cbc
    LAZY EVP_sha256
    LAZY GENERAL_NAMES_free
    LAZY OBJ_nid2sn
    LAZY OBJ_obj2txt
    LAZY OPENSSL_sk_num
    LAZY OPENSSL_sk_value
    LAZY OPENSSL_thread_stop
    LAZY OSSL_DECODER_CTX_free
    LAZY OSSL_DECODER_CTX_new_for_pkey
    LAZY OSSL_DECODER_CTX_set_passphrase_cb
    LAZY OSSL_DECODER_from_bio
    LAZY OSSL_DECODER_from_data
    LAZY OSSL_LIB_CTX_free
    LAZY OSSL_LIB_CTX_new
    LAZY OSSL_PROVIDER_load
    LAZY PEM_bytes_read_bio
    LAZY PEM_read_bio
    LAZY PEM_write_bio_PKCS8PrivateKey
    LAZY PEM_write_bio_PrivateKey
    LAZY PEM_write_bio_X509
    LAZY PKCS8_PRIV_KEY_INFO_free
    LAZY PKCS8_pkey_get0
    LAZY SSL_CIPHER_get_name
    LAZY SSL_CTX_free
    LAZY SSL_CTX_load_verify_locations
    LAZY SSL_CTX_new
    LAZY SSL_CTX_set_default_verify_paths
    LAZY SSL_CTX_set_verify
    LAZY SSL_CTX_use_PrivateKey_file
    LAZY SSL_CTX_use_certificate_chain_file
    LAZY SSL_accept
    LAZY SSL_ctrl
    LAZY SSL_do_handshake
    LAZY SSL_free
    LAZY SSL_get_current_cipher
    LAZY SSL_get_error
    LAZY SSL_get_peer_cert_chain
    LAZY SSL_get_verify_result
    LAZY SSL_get_version
    LAZY SSL_new
    LAZY SSL_set_bio
    LAZY SSL_set_connect_state
    LAZY SSL_set_fd
    LAZY SSL_shutdown
    LAZY TLS_client_method
    LAZY TLS_server_method
    LAZY X509V3_EXT_conf_nid
    LAZY X509V3_set_ctx
    LAZY X509_ALGOR_cmp
    LAZY X509_EXTENSION_free
    LAZY X509_NAME_add_entry_by_txt
    LAZY X509_NAME_cmp
    LAZY X509_NAME_print_ex
    LAZY X509_PUBKEY_get0_param
    LAZY X509_add_ext
    LAZY X509_check_ca
    LAZY X509_check_host
    LAZY X509_check_ip_asc
    LAZY X509_digest
    LAZY X509_free
    LAZY X509_get0_notAfter
    LAZY X509_get0_notBefore
    LAZY X509_get0_pubkey
    LAZY X509_get0_signature
    LAZY X509_get0_tbs_sigalg
    LAZY X509_get_X509_PUBKEY
    LAZY X509_get_default_cert_file
    LAZY X509_get_ext_d2i
    LAZY X509_get_extension_flags
    LAZY X509_get_issuer_name
    LAZY X509_get_key_usage
    LAZY X509_get_serialNumber
    LAZY X509_get_subject_name
    LAZY X509_getm_notAfter
    LAZY X509_getm_notBefore
    LAZY X509_new
    LAZY X509_new_ex
    LAZY X509_set_issuer_name
    LAZY X509_set_pubkey
    LAZY X509_set_version
    LAZY X509_sign
    LAZY X509_up_ref
    LAZY X509_verify
    LAZY X509_verify_cert_error_string
    LAZY d2i_PKCS8_PRIV_KEY_INFO
    LAZY d2i_X509
    LAZY i2d_X509
    LAZY i2d_X509_PUBKEY

    .pushsection .data.rel.certreload_openssl_slots, "aw"
    .globl certreload_openssl_slots_end
    .hidden certreload_openssl_slots_end
certreload_openssl_slots_end:
    .popsection
#endif
    .section .note.GNU-stack, "", @progbits
