package e2e

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/socialbroker/broker/broker/brokertest"
)

// A Korean browser signs up through the terms on the signup form: nothing
// ticked is refused with the message, then the boxes are ticked by their
// Korean labels ("agree to all" through static/terms.js, then the optional
// one unticked), and the agreements are stored with source form.
func TestBrowserSignupTerms(t *testing.T) {
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"},
		Terms: `[{tag: service, required: true, url: https://example.com/terms}, {tag: privacy, required: true, url: https://example.com/privacy}, {tag: marketing, url: https://example.com/marketing}]`})
	b := startBrowser(t)
	demo := env.URL + "/demo/"
	loginURL := env.URL + "/auth/login?return_to=" + url.QueryEscape(demo)
	step := "terms signup"

	run(b, "Accept-Language ko", func(ctx context.Context, tg *chromedp.Target) (cdp.Empty, error) {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return cdp.Empty{}, err
		}
		return cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "ko-KR,ko;q=0.9"}})
	})
	b.do("phone viewport", phone())
	b.do(step+": login page", chromedp.Navigate(loginURL), chromedp.WaitVisible(chromedp.ID("login-kakao")))
	if got := run(b, step+": lang", chromedp.Evaluate[string](`document.documentElement.lang`)); got != "ko" {
		b.fail(step, fmt.Errorf("<html lang=%q>, want ko", got))
	}
	b.do(step+": kakao", chromedp.Click(chromedp.ID("login-kakao")))
	b.expect(step+": consent page", "#approve", "#error-code")
	b.do(step+": approve", chromedp.Click(chromedp.ID("approve")))
	b.expect(step+": signup form", "#terms", "#error-code", "#status")
	// The script has shown "전체 동의".
	b.do(step+": agree-all checkbox", chromedp.WaitVisible(chromedp.ID("terms-all")))
	legend := run(b, step+": legend", chromedp.TextContent(chromedp.CSS("#terms legend")))
	labels := run(b, step+": labels", chromedp.Evaluate[string](`[...document.querySelectorAll('#terms label')].map((l) => l.textContent.trim()).join('|')`))
	if legend != "약관 동의" || labels != "전체 동의|(필수) 서비스 이용약관 동의|(필수) 개인정보 수집 및 이용 동의|(선택) 마케팅 정보 수신 동의" {
		b.fail(step, fmt.Errorf("terms in Korean: legend %q, labels %q", legend, labels))
	}
	b.screenshot("signup-terms-ko")

	// Nothing ticked: refused, the form again with the message.
	b.do(step+": nickname", clearNickname(), chromedp.SendKeys(chromedp.CSS(`input[name=nickname]`), "약관친구"))
	b.do(step+": submit without terms", chromedp.Click(chromedp.ID("signup-submit")))
	b.expect(step+": refused", "#message", "#error-code", "#status")
	if msg := run(b, step+": #message", chromedp.TextContent(chromedp.ID("message"))); !strings.Contains(msg, "필수 약관에 모두 동의해야") {
		b.fail(step, fmt.Errorf("#message = %q", msg))
	}
	b.screenshot("signup-terms-refused-ko")

	// "전체 동의" ticks every box; then untick the optional one by its label.
	b.do(step+": agree to all", chromedp.WaitVisible(chromedp.ID("terms-all")), chromedp.Click(chromedp.CSS(`label[for=terms-all]`)))
	checked := run(b, step+": checked", chromedp.Evaluate[string](`[...document.querySelectorAll('input[name=terms]:checked')].map((b) => b.value).join(',')`))
	if checked != "service,privacy,marketing" {
		b.fail(step, fmt.Errorf("after 전체 동의 checked = %q", checked))
	}
	b.do(step+": untick marketing", chromedp.Click(chromedp.CSS(`label[for=term-marketing]`)))
	if all := run(b, step+": all box", chromedp.Evaluate[bool](`document.getElementById('terms-all').checked`)); all {
		b.fail(step, fmt.Errorf("전체 동의 still ticked with marketing unticked"))
	}
	b.do(step+": submit", clearNickname(), chromedp.SendKeys(chromedp.CSS(`input[name=nickname]`), "약관친구"), chromedp.Click(chromedp.ID("signup-submit")))
	b.expect(step+": demo", "#status", "#error-code")
	b.wantVerified(step, "kakao", "약관친구")

	terms, err := env.Store.Pool().Query(context.Background(), `SELECT tag || '/' || source FROM terms_agreements`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for terms.Next() {
		var s string
		if err := terms.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	slices.Sort(got)
	if strings.Join(got, " ") != "privacy/form service/form" {
		t.Errorf("stored agreements %v", got)
	}
}
