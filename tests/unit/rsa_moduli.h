/*
 * rsa_moduli.h: real RSA moduli for the unit tests that parse KeyBundles
 * (test_keyvault.c, test_update.c, and the fs tests through fs_world.h),
 * so a key's bit length is computed from the same bytes Key Vault would
 * send.
 */
#ifndef DBX_TEST_RSA_MODULI_H
#define DBX_TEST_RSA_MODULI_H

/*
 * Real RSA moduli n, base64url without padding, made once with
 *   openssl genrsa BITS | openssl rsa -noout -modulus
 * (BITS = 2048, 3072, 1024, 2047) and the hex modulus re-encoded with
 * python3 base64.urlsafe_b64encode(bytes.fromhex(hex)).rstrip(b"=").
 * The private halves were discarded.
 */
#define N_RSA2048                                                                                  \
	"pyBk43HVpBsdiVvwEBuXp6rs0V0-Lqm5An7r5VpaNeSuGkhyLtL7qF1_SdoVjmGgiSFxfxmTMtRLAbuu"         \
	"QR70h8X35ZgtU_MN0lhZ-rTMf8SKpulR_BzRtmx2pi-PouhZ2Wiy7WSYnMb8f5xg12Riip--i4UUGm26"         \
	"8cBAkJPmtAQcspOgDFGB5CpjtECbmuUxoft6L3EKnycdejwpPekeNqpF4ooyNeyvf7EpFrPn50bxNAqJ"         \
	"-gBjo4FFA_4sShAJIuRUGl3ekbQcpXIhU4pEpSUJvqt4Vd9mh22VIU3NsTYTIgYnTrtT2Fo94w3mPtvN"         \
	"4MDBAfF-6fUPKGvqSiDF0Q"

#define N_RSA3072                                                                                  \
	"vBn9-FV4pHkKy1hpKMsfVsLODr-7XtDIxwqEyA_W381KrgS3WAUfqthyDeVHFUxF0KH8rrudLA3IkuYL"         \
	"yQFi7D96WSRbjAzuKJYegfy6QxuPExKAdoys3seeIkcnR6I1H9Ud2zvjBQ5ZAkkSOgj8a8mXpyGjmtQy"         \
	"k2LERTtDa6QY9oac59Pa7_z-pBvHIKuAr2PkTJm4TUz7nUyQzWITlMCxZ0acfBsTX8rIG7Mdn-jT5kOR"         \
	"a0IqhWHY8Y5H1gmXRWckQ4qKpRcfyQONDfXP9MuDoVYyF3UdiYoGV-Ovn0PSRgzqKX6pxB0zYrl2sOx5"         \
	"FTkmaKugW1A9nRd9X4gDNa46ee8ETXSLUxjxllazXYJJoupNcZAmj-E7Zl87uvE3fRO7zIQUN8YHokSE"         \
	"thNenrQHWC5ne5WOtUodVINT0XoQ7sD207aApItFrOP5TmpsDwSdhfZzHeiY7lUquipAqyTP8J_GKRTp"         \
	"erItl0jkW8swfvMheiSPmCNtjVdjpyRZ"

#define N_RSA1024                                                                                  \
	"xZghVI_BpCNYbP7FpXf0lnmB-kbAitEF4OBwawMyfjg8WA01oX8W3hDX7TzTUUbZpYEha98HnNbUEN-l"         \
	"vuk6VM90ja07YjwCUDcdSlibtDYNCbqmCRqmBS18BevJo8wSKd3NXfvanmvZIZCwuJVH42SQAGdt5mCg"         \
	"yWzl7vFKlEU"

#define N_RSA2047                                                                                  \
	"U8ePP7S16Le8jcMW-efvDUwS2EGAmYXvCoqDliy8CAOhUHYJB__rvFwJyhpabQcvVzRBrK97BhdM8jQs"         \
	"oxwto-bfbN9OyPp55zzXoicgOQMNLbaQr-GfpGQrnWm4WUFKeL76OzqHKJoqlrNvxQAChUJyU_w3aU-x"         \
	"nJDgB5lce5Kl738Xd-qJhdEPw4ACX7y0jP0ivE1gs22835dWdCibpoZjcDpojYY6LSj1d87sbV2e9ygP"         \
	"64Z-n6rabMf5vyfYR2MYl42l0YmNVkDxQinx5CWKxQ9jV2XHozojsm7dxbGtXZdFWKsIv_6ayAFHY2u-"         \
	"QAkju7C1hEJs7F6kzU05aw"

#endif
