// Command flow runs the whole flow against a running `cognito-verify dev`:
// request a code for the email address, read it from the dev backend's
// outbox, verify it, then request again and show the SEND_COOLDOWN refusal
// with its retry delay; last, ask where the user stands
// (GetVerificationStatus): the email verified, as the backend holds it, and
// the cooldown the refusal named.
//
// Environment: COGNITO_VERIFY_ADDR (default 127.0.0.1:50051),
// COGNITO_VERIFY_EMULATOR_URL (default http://127.0.0.1:9229),
// COGNITO_VERIFY_TOKEN (required: the user's access token).
// Exits non-zero when a step does not do what it says.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	verifyclient "cognito-verify.invalid/clients/go"
	verifyv1 "cognito-verify.invalid/clients/go/gen/cognito/verify/v1"
)

const attribute = "email"

var httpClient = &http.Client{Timeout: 5 * time.Second}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// usernameOf is the access token's `username` claim: the outbox is
// filtered by user (read, not verified; the service verifies the token).
func usernameOf(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		fail("the token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		fail("the token's payload: %v", err)
	}
	var claims struct {
		Username string `json:"username"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Username == "" {
		fail("the token has no username claim")
	}
	return claims.Username
}

func newestCode(emulatorURL, username string) string {
	query := url.Values{"username": {username}, "attribute": {attribute}}.Encode()
	r, err := httpClient.Get(emulatorURL + "/_emulator/outbox?" + query)
	if err != nil {
		fail("the outbox: %v", err)
	}
	defer r.Body.Close()
	var outbox struct {
		Messages []struct {
			Code   string `json:"code"`
			SentAt int64  `json:"sentAt"`
		} `json:"messages"`
	}
	if r.StatusCode != http.StatusOK {
		fail("the outbox answered %s", r.Status)
	}
	if err := json.NewDecoder(r.Body).Decode(&outbox); err != nil {
		fail("the outbox: %v", err)
	}
	if len(outbox.Messages) == 0 {
		fail("no code in the outbox for %s / %s", username, attribute)
	}
	// Oldest first; a stable sort, so the last is the newest.
	m := outbox.Messages
	sort.SliceStable(m, func(i, j int) bool { return m[i].SentAt < m[j].SentAt })
	return m[len(m)-1].Code
}

func attributeVerified(emulatorURL, token string) bool {
	// Cognito's GetUser, asked of the dev backend directly.
	body, _ := json.Marshal(map[string]string{"AccessToken": token})
	req, err := http.NewRequest(http.MethodPost, emulatorURL, bytes.NewReader(body))
	if err != nil {
		fail("GetUser: %v", err)
	}
	req.Header.Set("content-type", "application/x-amz-json-1.1")
	req.Header.Set("x-amz-target", "AWSCognitoIdentityProviderService.GetUser")
	r, err := httpClient.Do(req)
	if err != nil {
		fail("GetUser: %v", err)
	}
	defer r.Body.Close()
	var user struct {
		UserAttributes []struct{ Name, Value string }
	}
	if r.StatusCode != http.StatusOK {
		fail("GetUser answered %s", r.Status)
	}
	if err := json.NewDecoder(r.Body).Decode(&user); err != nil {
		fail("GetUser: %v", err)
	}
	for _, a := range user.UserAttributes {
		if a.Name == attribute+"_verified" {
			return a.Value == "true"
		}
	}
	return false
}

func main() {
	addr := getenv("COGNITO_VERIFY_ADDR", "127.0.0.1:50051")
	emulatorURL := getenv("COGNITO_VERIFY_EMULATOR_URL", "http://127.0.0.1:9229")
	token := os.Getenv("COGNITO_VERIFY_TOKEN")
	if token == "" {
		fail("COGNITO_VERIFY_TOKEN is not set")
	}
	username := usernameOf(token)
	ctx := context.Background()

	// Plaintext for the local dev server; for TLS or mTLS:
	// verifyclient.Options{CAFile: "ca.pem", CertFile: "client.pem", KeyFile: "client-key.pem"}
	conn, err := verifyclient.Dial(addr, verifyclient.Options{Plaintext: true})
	if err != nil {
		fail("%v", err)
	}
	defer conn.Close()
	client := verifyclient.New(conn, verifyclient.WithTimeout(10*time.Second))

	// 1. Request a code.
	sent, err := client.GetUserAttributeVerificationCode(ctx, token, attribute)
	if err != nil {
		fail("send: %v", err)
	}
	details := sent.GetCodeDeliveryDetails()
	if details.GetDeliveryMedium() != verifyv1.DeliveryMedium_DELIVERY_MEDIUM_EMAIL {
		fail("expected an email delivery, got %v", sent)
	}
	fmt.Printf("1. code sent by %s to %s\n", details.GetDeliveryMedium(), details.GetDestination())

	// 2. The code, as the user would read it (the dev backend's outbox).
	code := newestCode(emulatorURL, username)
	fmt.Printf("2. read the code from the outbox (%d digits)\n", len(code))

	// 3. Verify it.
	if _, err := client.VerifyUserAttribute(ctx, token, attribute, code); err != nil {
		fail("verify: %v", err)
	}
	if !attributeVerified(emulatorURL, token) {
		fail("%s_verified is not true after the verify", attribute)
	}
	fmt.Printf("3. %s verified\n", attribute)

	// 4. Request again at once: refused within the send cooldown.
	_, err = client.GetUserAttributeVerificationCode(ctx, token, attribute)
	var e *verifyclient.Error
	switch {
	case err == nil:
		fail("a second send within the cooldown was not refused")
	case !errors.As(err, &e) || e.Reason != verifyv1.ErrorReason_SEND_COOLDOWN || !e.HasRetryAfter:
		fail("expected SEND_COOLDOWN with a retry delay, got %v", err)
	}
	var quota []string
	for _, q := range e.QuotaViolations {
		quota = append(quota, q.Subject)
	}
	fmt.Printf("4. refused: %s %s, retry after %.1f s (quota: %s)\n",
		e.CodeName(), e.ReasonName, e.RetryAfter.Seconds(), strings.Join(quota, ", "))

	// 5. Where the user stands: read, nothing spent.
	status, err := client.GetVerificationStatus(ctx, token)
	if err != nil {
		fail("status: %v", err)
	}
	var email *verifyv1.AttributeStatus
	for _, a := range status.GetAttributes() {
		if a.GetAttributeName() == attribute {
			email = a
		}
	}
	if email == nil {
		fail("the status has no %s", attribute)
	}
	if !email.GetVerified() || email.GetSendBlockedBy() != verifyv1.ErrorReason_SEND_COOLDOWN {
		fail("expected a verified %s in its cooldown, got %v", attribute, email)
	}
	left := "unlimited"
	if status.SendsLeft != nil {
		left = fmt.Sprint(status.GetSendsLeft())
	}
	fmt.Printf("5. status: %s verified, next code in %d s (%s), %s codes left this hour\n",
		attribute, email.GetNextSendIn().GetSeconds(), email.GetSendBlockedBy(), left)
}
