#include "backends/aws/xml_reader.hpp"

#include <cstdint>
#include <optional>

namespace kasm::aws::detail {

const XmlElement* XmlElement::child(std::string_view child_name) const {
  for (const auto& c : children)
    if (c.name == child_name) return &c;
  return nullptr;
}

std::string XmlElement::childText(std::string_view child_name) const {
  const XmlElement* c = child(child_name);
  return c ? c->text : std::string();
}

std::vector<const XmlElement*> XmlElement::childrenNamed(std::string_view child_name) const {
  std::vector<const XmlElement*> out;
  for (const auto& c : children)
    if (c.name == child_name) out.push_back(&c);
  return out;
}

const XmlElement* XmlElement::findDescendant(std::string_view descendant_name) const {
  // Iterative: the tree's depth is bounded by the parser, but a walk needs no recursion anyway.
  std::vector<const XmlElement*> stack;
  for (auto it = children.rbegin(); it != children.rend(); ++it) stack.push_back(&*it);
  while (!stack.empty()) {
    const XmlElement* e = stack.back();
    stack.pop_back();
    if (e->name == descendant_name) return e;
    for (auto it = e->children.rbegin(); it != e->children.rend(); ++it) stack.push_back(&*it);
  }
  return nullptr;
}

namespace {

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool isNameStart(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || c >= 0x80;
}

bool isNameChar(unsigned char c) {
  return isNameStart(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

bool isXmlChar(std::uint32_t cp) {
  return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
         (cp >= 0x10000 && cp <= 0x10FFFF);
}

void appendUtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Parser {
 public:
  Parser(std::string_view doc, const XmlLimits& limits) : doc_(doc), limits_(limits) {}

  Result<XmlElement> run() {
    if (doc_.size() > limits_.max_bytes)
      return invalidArgument("xml: the document has " + std::to_string(doc_.size()) +
                             " bytes, more than the limit of " + std::to_string(limits_.max_bytes));
    if (doc_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
    while (pos_ < doc_.size()) {
      if (doc_[pos_] == '<') {
        if (auto e = markup(); !e.ok()) return std::move(e).error();
      } else if (auto e = characterData(); !e.ok()) {
        return std::move(e).error();
      }
    }
    if (!stack_.empty()) return fail("the document ends inside <" + stack_.back()->name + ">");
    if (!root_done_) return fail("the document has no root element");
    return std::move(root_);
  }

 private:
  Error fail(const std::string& what) const {
    return invalidArgument("xml: at byte " + std::to_string(pos_) + ": " + what);
  }

  bool startsWith(std::string_view s) const { return doc_.compare(pos_, s.size(), s) == 0; }

  // Skips to just past `terminator`; false when it never comes.
  bool skipPast(std::string_view terminator) {
    const auto end = doc_.find(terminator, pos_);
    if (end == std::string_view::npos) return false;
    pos_ = end + terminator.size();
    return true;
  }

  Result<void> markup() {
    if (startsWith("<?")) {
      if (!skipPast("?>")) return fail("a processing instruction is not closed");
      return {};
    }
    if (startsWith("<!--")) {
      pos_ += 4;
      if (!skipPast("-->")) return fail("a comment is not closed");
      return {};
    }
    if (startsWith("<![CDATA[")) {
      if (stack_.empty()) return fail("CDATA outside the root element");
      const std::size_t start = pos_ + 9;
      const auto end = doc_.find("]]>", start);
      if (end == std::string_view::npos) return fail("a CDATA section is not closed");
      KASM_RETURN_IF_ERROR(checkChars(doc_.substr(start, end - start)));
      stack_.back()->text.append(doc_.substr(start, end - start));
      pos_ = end + 3;
      return {};
    }
    if (startsWith("<!")) return fail("DTDs and declarations are not accepted");
    if (startsWith("</")) return endTag();
    return startTag();
  }

  Result<std::string> name() {
    const std::size_t start = pos_;
    if (pos_ >= doc_.size() || !isNameStart(static_cast<unsigned char>(doc_[pos_]))) return fail("a name is expected");
    while (pos_ < doc_.size() && isNameChar(static_cast<unsigned char>(doc_[pos_]))) ++pos_;
    return std::string(doc_.substr(start, pos_ - start));
  }

  static std::string localName(const std::string& qualified) {
    const auto colon = qualified.rfind(':');
    return colon == std::string::npos ? qualified : qualified.substr(colon + 1);
  }

  void skipSpace() {
    while (pos_ < doc_.size() && isSpace(doc_[pos_])) ++pos_;
  }

  Result<void> startTag() {
    ++pos_;  // '<'
    KASM_ASSIGN_OR_RETURN(std::string qname, name());
    if (root_done_) return fail("content after the root element");
    if (stack_.size() >= limits_.max_depth)
      return fail("elements nest deeper than " + std::to_string(limits_.max_depth));
    if (++elements_ > limits_.max_elements)
      return fail("more than " + std::to_string(limits_.max_elements) + " elements");
    for (;;) {
      const std::size_t before = pos_;
      skipSpace();
      if (pos_ >= doc_.size()) return fail("a start tag is not closed");
      if (doc_[pos_] == '>' || startsWith("/>")) break;
      if (pos_ == before) return fail("attributes must be separated by white space");
      KASM_RETURN_IF_ERROR(attribute());
    }
    XmlElement* element = nullptr;
    if (stack_.empty()) {
      root_.name = localName(qname);
      element = &root_;
    } else {
      // Only the open element's own children vector grows; no pointer on the stack points into it.
      stack_.back()->children.push_back(XmlElement{localName(qname), {}, {}});
      element = &stack_.back()->children.back();
    }
    if (startsWith("/>")) {
      pos_ += 2;
      if (stack_.empty()) root_done_ = true;
      return {};
    }
    ++pos_;  // '>'
    stack_.push_back(element);
    open_names_.push_back(std::move(qname));
    return {};
  }

  Result<void> attribute() {
    KASM_ASSIGN_OR_RETURN(std::string attr, name());
    skipSpace();
    if (pos_ >= doc_.size() || doc_[pos_] != '=') return fail("attribute '" + attr + "' has no value");
    ++pos_;
    skipSpace();
    if (pos_ >= doc_.size() || (doc_[pos_] != '"' && doc_[pos_] != '\''))
      return fail("an attribute value must be quoted");
    const char quote = doc_[pos_++];
    const auto end = doc_.find(quote, pos_);
    if (end == std::string_view::npos) return fail("an attribute value is not closed");
    const std::string_view raw = doc_.substr(pos_, end - pos_);
    if (raw.find('<') != std::string_view::npos) return fail("'<' inside an attribute value");
    std::string ignored;
    KASM_RETURN_IF_ERROR(decode(raw, ignored));
    pos_ = end + 1;
    return {};
  }

  Result<void> endTag() {
    pos_ += 2;
    KASM_ASSIGN_OR_RETURN(std::string qname, name());
    skipSpace();
    if (pos_ >= doc_.size() || doc_[pos_] != '>') return fail("an end tag is not closed");
    if (stack_.empty()) return fail("</" + qname + "> closes nothing");
    if (open_names_.back() != qname) return fail("</" + qname + "> closes <" + open_names_.back() + ">");
    ++pos_;
    stack_.pop_back();
    open_names_.pop_back();
    if (stack_.empty()) root_done_ = true;
    return {};
  }

  Result<void> characterData() {
    const auto end = doc_.find('<', pos_);
    const std::string_view raw = doc_.substr(pos_, end == std::string_view::npos ? std::string_view::npos : end - pos_);
    if (stack_.empty()) {
      for (char c : raw)
        if (!isSpace(c)) return fail("text outside the root element");
    } else {
      KASM_RETURN_IF_ERROR(decode(raw, stack_.back()->text));
    }
    pos_ += raw.size();
    return {};
  }

  // Control characters other than tab, newline and carriage return are not XML.
  Result<void> checkChars(std::string_view raw) const {
    for (unsigned char c : raw)
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return fail("a control character in the text");
    return {};
  }

  Result<void> decode(std::string_view raw, std::string& out) const {
    KASM_RETURN_IF_ERROR(checkChars(raw));
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '&') {
        out.push_back(raw[i]);
        continue;
      }
      const auto semi = raw.find(';', i);
      if (semi == std::string_view::npos || semi - i > 12) return fail("an entity reference is not closed");
      const std::string_view ref = raw.substr(i + 1, semi - i - 1);
      if (ref == "lt")
        out.push_back('<');
      else if (ref == "gt")
        out.push_back('>');
      else if (ref == "amp")
        out.push_back('&');
      else if (ref == "quot")
        out.push_back('"');
      else if (ref == "apos")
        out.push_back('\'');
      else if (auto cp = characterReference(ref))
        appendUtf8(out, *cp);
      else
        return fail("unknown or invalid entity '&" + std::string(ref) + ";'");
      i = semi;
    }
    return {};
  }

  static std::optional<std::uint32_t> characterReference(std::string_view ref) {
    if (ref.size() < 2 || ref[0] != '#') return std::nullopt;
    const bool hex = ref[1] == 'x';
    const std::string_view digits = ref.substr(hex ? 2 : 1);
    if (digits.empty() || digits.size() > 8) return std::nullopt;
    std::uint32_t cp = 0;
    for (char c : digits) {
      int d = -1;
      if (c >= '0' && c <= '9')
        d = c - '0';
      else if (hex && c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
      else if (hex && c >= 'A' && c <= 'F')
        d = c - 'A' + 10;
      if (d < 0) return std::nullopt;
      cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(d);
      if (cp > 0x10FFFF) return std::nullopt;
    }
    if (!isXmlChar(cp)) return std::nullopt;
    return cp;
  }

  std::string_view doc_;
  const XmlLimits& limits_;
  std::size_t pos_ = 0;
  std::size_t elements_ = 0;
  XmlElement root_;
  bool root_done_ = false;
  std::vector<XmlElement*> stack_;
  std::vector<std::string> open_names_;  // Qualified names, for matching end tags exactly.
};

}  // namespace

Result<XmlElement> parseXml(std::string_view document, const XmlLimits& limits) {
  return Parser(document, limits).run();
}

}  // namespace kasm::aws::detail
