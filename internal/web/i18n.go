package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Supported languages. English is the fallback.
const (
	langKO = "ko"
	langEN = "en"
)

// LangCookie remembers the language chosen with ?lang= across the
// provider round trip (a top-level navigation back carries a Lax cookie).
const LangCookie = "broker_lang"

// queryLang is the request's ?lang= when it names a supported language.
func queryLang(req *http.Request) string {
	if q := strings.ToLower(strings.TrimSpace(req.URL.Query().Get("lang"))); q == langKO || q == langEN {
		return q
	}
	return ""
}

// RememberLang sets the language cookie when the request chose a language
// with ?lang=.
func RememberLang(w http.ResponseWriter, req *http.Request, secure bool) {
	if l := queryLang(req); l != "" {
		http.SetCookie(w, &http.Cookie{Name: LangCookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	}
}

// Lang picks "ko" or "en" for req: a lang query parameter (ko or en) wins,
// then the language remembered in the cookie, else the supported language
// with the highest q-value in Accept-Language (the earlier one on a tie;
// q=0 means "not this one"), else "en".
func Lang(req *http.Request) string {
	if req == nil {
		return langEN
	}
	if q := queryLang(req); q != "" {
		return q
	}
	if c, err := req.Cookie(LangCookie); err == nil && (c.Value == langKO || c.Value == langEN) {
		return c.Value
	}
	best, bestQ := "", 0.0
	for i, part := range strings.Split(req.Header.Get("Accept-Language"), ",") {
		if i >= 32 { // a real browser sends a handful; ignore the rest of a silly header
			break
		}
		tag, params, _ := strings.Cut(part, ";")
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		primary, _, _ = strings.Cut(primary, "_")
		if primary != langKO && primary != langEN {
			continue
		}
		q, ok := qValue(params)
		if !ok || q <= bestQ {
			continue
		}
		best, bestQ = primary, q
	}
	if best == "" {
		return langEN
	}
	return best
}

// qValue reads the q parameter of one Accept-Language entry (default 1).
// ok is false when the q-value is malformed, so the entry is ignored.
func qValue(params string) (float64, bool) {
	q := 1.0
	for _, p := range strings.Split(params, ";") {
		k, v, found := strings.Cut(strings.TrimSpace(p), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || f > 1 {
			return 0, false
		}
		q = f
	}
	return q, true
}

// ui holds the fixed page wording, by language. Templates read it as .T.key;
// a missing key fails the render (missingkey=error), and a test checks that
// both languages have the same keys.
var ui = map[string]map[string]string{
	langKO: {
		"login_title":      "로그인",
		"login_lead":       "사용하시는 계정으로 간편하게 로그인하세요.",
		"login_none":       "지금은 사용할 수 있는 로그인 방법이 없습니다. 잠시 후 다시 시도해 주세요.",
		"login_privacy":    "선택한 서비스에서 기본 프로필 정보만 전달받으며, 비밀번호는 저희에게 전달되지 않습니다.",
		"lang_nav":         "언어",
		"signup_title":     "회원가입",
		"signup_lead":      "처음 오셨네요. 몇 가지만 입력하면 가입이 끝나요.",
		"signup_submit":    "가입하기",
		"terms_heading":    "약관 동의",
		"terms_all":        "전체 동의",
		"terms_all_submit": "모두 동의하고 가입하기",
		"error_back":       "로그인 화면으로 돌아가기",
		"error_code_label": "오류 코드",
		"link_title":       "계정 연결",
		"link_lead":        "지금 로그인한 계정에 %s 계정을 연결할까요? 직접 요청하지 않았다면 취소하세요.",
		"link_continue":    "연결하기",
		"link_cancel":      "취소",
		"footer_terms":     "이용약관",
		"footer_privacy":   "개인정보 처리방침",
	},
	langEN: {
		"login_title":      "Sign in",
		"login_lead":       "Choose an account to continue.",
		"login_none":       "No sign-in options are available right now. Please try again later.",
		"login_privacy":    "We only receive your basic profile from the service you choose. Your password is never shared with us.",
		"lang_nav":         "Language",
		"signup_title":     "Create your account",
		"signup_lead":      "Welcome! Just a few details and you're all set.",
		"signup_submit":    "Create account",
		"terms_heading":    "Terms",
		"terms_all":        "Agree to all",
		"terms_all_submit": "Agree to all and create account",
		"error_back":       "Back to sign in",
		"error_code_label": "Error code",
		"link_title":       "Link an account",
		"link_lead":        "Link a %s account to the account you are signed in with? If you did not ask for this, cancel.",
		"link_continue":    "Link account",
		"link_cancel":      "Cancel",
		"footer_terms":     "Terms of service",
		"footer_privacy":   "Privacy policy",
	},
}

// langNames labels the language switcher, each in its own language.
var langNames = []struct{ Code, Label string }{
	{langKO, "한국어"},
	{langEN, "English"},
}

// buttonLabel is the official wording of a provider's login button.
func buttonLabel(lang, style, display string) string {
	ko := lang == langKO
	switch style {
	case "kakao":
		if ko {
			return "카카오 로그인"
		}
		return "Login with Kakao"
	case "naver":
		if ko {
			return "네이버 로그인"
		}
		return "Log in with NAVER"
	case "google":
		if ko {
			return "Google 계정으로 로그인"
		}
		return "Sign in with Google"
	case "apple":
		if ko {
			return "Apple로 로그인"
		}
		return "Sign in with Apple"
	}
	if ko {
		return display + "(으)로 로그인"
	}
	return "Continue with " + display
}

// fieldLabels are the human labels of the well-known signup fields; any
// other field is labelled with its own name.
var fieldLabels = map[string]map[string]string{
	"nickname": {langKO: "닉네임", langEN: "Nickname"},
	"name":     {langKO: "이름", langEN: "Name"},
	"email":    {langKO: "이메일", langEN: "Email"},
}

// HasFieldLabel reports whether a signup field has a label of its own.
func HasFieldLabel(name string) bool {
	_, ok := fieldLabels[name]
	return ok
}

func fieldLabel(lang, name string) string {
	if l, ok := fieldLabels[name]; ok {
		return l[lang]
	}
	return name
}

// signupMessage is the sentence shown above the signup form for code.
// label is the label of the first invalid field ("" when none is marked),
// maxLen its MaxLen.
func signupMessage(lang, code, label string, maxLen int) string {
	ko := lang == langKO
	pick := func(k, e string) string {
		if ko {
			return k
		}
		return e
	}
	generic := pick("입력한 내용을 확인한 뒤 다시 시도해 주세요.", "Please check what you entered and try again.")
	switch code {
	case "":
		return ""
	case "csrf":
		return pick("보안을 위해 입력 화면의 유효 시간이 지났어요. 다시 한 번 제출해 주세요.",
			"For your security, this form expired. Please submit it again.")
	case "terms_required":
		return pick("필수 약관에 모두 동의해야 가입할 수 있어요.",
			"Please agree to every required term to create your account.")
	case "field_missing", "field_blank", "field_too_long", "field_invalid":
		if label == "" {
			return generic
		}
	default:
		return generic
	}
	switch code {
	case "field_missing":
		return pick(label+" 항목을 입력해 주세요.", label+" is required.")
	case "field_blank":
		return pick(label+" 항목은 공백만으로 입력할 수 없어요. 내용을 입력해 주세요.",
			label+" can't be only spaces. Please fill it in.")
	case "field_too_long":
		if maxLen <= 0 {
			return pick(label+" 항목이 너무 길어요. 조금 줄여서 입력해 주세요.",
				label+" is too long. Please shorten it.")
		}
		return pick(fmt.Sprintf("%s 항목은 %d자 이하로 입력해 주세요.", label, maxLen),
			fmt.Sprintf("%s must be %d characters or fewer.", label, maxLen))
	default: // field_invalid
		return pick(label+" 항목에 사용할 수 없는 문자가 있어요. 확인 후 다시 입력해 주세요.",
			label+" contains characters that can't be used. Please check it and try again.")
	}
}

// errorText is the title and plain-language message of one error code.
type errorText struct{ Title, Message string }

// fallbackCode is shown for any code not in the catalogue.
const fallbackCode = "server_error"

// errorCatalogue maps each public error code to its wording, by language.
var errorCatalogue = map[string]map[string]errorText{
	"invalid_request": {
		langKO: {"요청을 처리할 수 없어요", "요청에 필요한 정보가 빠졌거나 올바르지 않습니다. 로그인 화면에서 처음부터 다시 시작해 주세요."},
		langEN: {"Something was wrong with the request", "The request was missing information or wasn't valid. Please start again from the sign-in page."},
	},
	"invalid_state": {
		langKO: {"로그인 시간이 만료되었어요", "로그인을 시작한 지 너무 오래되었거나, 다른 창이나 브라우저에서 시작된 로그인입니다. 처음부터 다시 로그인해 주세요."},
		langEN: {"Your sign-in expired", "The sign-in took too long, or it was started in another window or browser. Please start again."},
	},
	"access_denied": {
		langKO: {"로그인이 취소되었어요", "로그인 화면에서 취소하셨거나 필요한 정보 제공에 동의하지 않으셨습니다. 계속하려면 다시 로그인해 주세요."},
		langEN: {"Sign-in was cancelled", "You cancelled the sign-in, or didn't allow the information we asked for. To continue, please sign in again."},
	},
	"invalid_grant": {
		langKO: {"로그인을 마치지 못했어요", "로그인 확인 정보가 이미 사용되었거나 만료되었습니다. 다시 로그인해 주세요."},
		langEN: {"We couldn't finish signing you in", "The sign-in confirmation was already used or has expired. Please sign in again."},
	},
	"invalid_id_token": {
		langKO: {"계정 정보를 확인하지 못했어요", "로그인한 서비스에서 받은 계정 정보를 확인할 수 없었습니다. 다시 로그인해 주시고, 문제가 계속되면 다른 로그인 방법을 이용해 주세요."},
		langEN: {"We couldn't verify your account", "We couldn't confirm the account details from the service you signed in with. Please try again, or use another sign-in option if it keeps happening."},
	},
	"invalid_response": {
		langKO: {"로그인 서비스의 응답이 올바르지 않아요", "로그인한 서비스에서 알 수 없는 응답이 왔습니다. 잠시 후 다시 시도해 주세요."},
		langEN: {"The sign-in service sent an unexpected reply", "We got a reply we couldn't understand from the service you signed in with. Please try again in a moment."},
	},
	"provider_error": {
		langKO: {"로그인 서비스에 문제가 생겼어요", "로그인한 서비스에 일시적인 문제가 생겼습니다. 잠시 후 다시 시도하거나 다른 로그인 방법을 이용해 주세요."},
		langEN: {"The sign-in service had a problem", "The service you signed in with ran into a temporary problem. Please try again in a moment, or use another sign-in option."},
	},
	"provider_timeout": {
		langKO: {"로그인 서비스가 응답하지 않아요", "로그인한 서비스가 제때 응답하지 않았습니다. 잠시 후 다시 시도해 주세요."},
		langEN: {"The sign-in service didn't answer", "The service you signed in with took too long to answer. Please try again in a moment."},
	},
	"return_to_not_allowed": {
		langKO: {"이동할 수 없는 주소예요", "로그인 후 돌아갈 주소가 허용된 주소가 아닙니다. 이용하시던 서비스로 돌아가 그곳에서 다시 로그인을 시작해 주세요."},
		langEN: {"That return address isn't allowed", "The page you'd go back to after signing in isn't one we're allowed to send you to. Please go back to the app and start signing in from there."},
	},
	"invalid_client": {
		langKO: {"등록되지 않은 앱이에요", "로그인을 요청한 앱이 이 서비스에 등록되어 있지 않습니다. 앱을 최신 버전으로 업데이트하거나 앱에서 다시 로그인을 시작해 주세요."},
		langEN: {"This app isn't registered", "The app that started this sign-in isn't registered with this service. Please update the app, or start signing in from the app again."},
	},
	"invalid_redirect_uri": {
		langKO: {"앱으로 돌아갈 수 없어요", "로그인 후 돌아갈 앱 주소가 등록된 주소가 아닙니다. 앱을 최신 버전으로 업데이트하거나 앱에서 다시 로그인을 시작해 주세요."},
		langEN: {"We can't return you to the app", "The address to return to the app after signing in isn't registered. Please update the app, or start signing in from the app again."},
	},
	"unknown_provider": {
		langKO: {"지원하지 않는 로그인 방법이에요", "선택하신 로그인 방법을 찾을 수 없습니다. 로그인 화면에서 다른 방법을 선택해 주세요."},
		langEN: {"That sign-in option isn't available", "We couldn't find the sign-in option you chose. Please pick one on the sign-in page."},
	},
	"signup_expired": {
		langKO: {"가입 시간이 만료되었어요", "가입을 마치기까지 시간이 너무 오래 걸렸습니다. 다시 로그인하면 가입을 이어서 할 수 있어요."},
		langEN: {"Your sign-up expired", "Too much time passed before the sign-up was finished. Please sign in again to continue."},
	},
	"identity_conflict": {
		langKO: {"이미 다른 사용자와 연결된 계정이에요", "이 계정은 이미 다른 사용자에게 연결되어 있습니다. 그 사용자로 로그인하거나 다른 계정을 사용해 주세요."},
		langEN: {"This account is already linked to someone else", "This account is already linked to another user. Sign in as that user, or use a different account."},
	},
	"terms_required": {
		langKO: {"필수 약관 동의가 필요해요", "가입에 필요한 필수 약관에 동의하지 않으셨습니다. 다시 로그인해서 필수 약관에 동의해 주세요."},
		langEN: {"Agreement to the required terms is needed", "You haven't agreed to the terms required to sign up. Please sign in again and agree to the required terms."},
	},
	"user_disabled": {
		langKO: {"이용이 제한된 계정이에요", "이 계정은 운영자에 의해 이용이 중지되었습니다. 고객센터에 문의해 주세요."},
		langEN: {"This account is disabled", "This account has been disabled by the service. Please contact support."},
	},
	"temporarily_unavailable": {
		langKO: {"잠시 이용할 수 없어요", "지금은 서비스를 이용할 수 없습니다. 몇 분 뒤에 다시 시도해 주세요."},
		langEN: {"We're temporarily unavailable", "The service can't be used right now. Please try again in a few minutes."},
	},
	"rate_limited": {
		langKO: {"시도가 너무 많아요", "짧은 시간 동안 너무 많이 시도하셨습니다. 잠시 기다린 뒤 다시 시도해 주세요."},
		langEN: {"Too many attempts", "There were too many attempts in a short time. Please wait a moment and try again."},
	},
	"method_not_allowed": {
		langKO: {"잘못된 요청이에요", "이 주소는 이런 방식으로 열 수 없습니다. 로그인 화면에서 다시 시작해 주세요."},
		langEN: {"That request isn't supported", "This address can't be opened this way. Please start again from the sign-in page."},
	},
	"not_found": {
		langKO: {"페이지를 찾을 수 없어요", "요청하신 페이지가 없거나 주소가 바뀌었습니다. 주소를 확인하거나 로그인 화면으로 돌아가 주세요."},
		langEN: {"Page not found", "The page you asked for doesn't exist or has moved. Check the address, or go back to the sign-in page."},
	},
	"server_error": {
		langKO: {"문제가 발생했어요", "저희 쪽에서 예상하지 못한 문제가 발생했습니다. 잠시 후 다시 시도해 주세요."},
		langEN: {"Something went wrong", "Something went wrong on our side. Please try again in a moment."},
	},
}

// lookupError returns the catalogue code actually shown for code (code
// itself, or fallbackCode when unknown) and its wording in lang.
func lookupError(lang, code string) (string, errorText) {
	texts, ok := errorCatalogue[code]
	if !ok {
		code, texts = fallbackCode, errorCatalogue[fallbackCode]
	}
	return code, texts[lang]
}
