// The XML reader on EC2's shapes and on malformed or hostile input: always an answer, never a crash.

#include "backends/aws/xml_reader.hpp"

#include <gtest/gtest.h>

#include <string>

#include "kasm/core/secure_random.hpp"

namespace kasm::aws::detail {
namespace {

TEST(AwsXmlReader, ReadsAnEc2Answer) {
  const std::string doc = R"(<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r-1</requestId>
  <!-- a comment -->
  <reservationSet>
    <item><instancesSet><item>
      <instanceId>i-1</instanceId>
      <tagSet><item><key>a&amp;b</key><value>&lt;x&gt; &#65;&#x42;&quot;&apos;</value></item></tagSet>
      <note><![CDATA[<raw> & text]]></note>
    </item></instancesSet></item>
  </reservationSet>
  <empty/>
</DescribeInstancesResponse>)";
  auto root = parseXml(doc);
  ASSERT_TRUE(root.ok()) << root.error().toString();
  EXPECT_EQ(root->name, "DescribeInstancesResponse");
  EXPECT_EQ(root->childText("requestId"), "r-1");
  const XmlElement* item = root->child("reservationSet")->child("item")->child("instancesSet")->child("item");
  ASSERT_NE(item, nullptr);
  EXPECT_EQ(item->childText("instanceId"), "i-1");
  const XmlElement* tag = item->child("tagSet")->child("item");
  EXPECT_EQ(tag->childText("key"), "a&b");
  EXPECT_EQ(tag->childText("value"), "<x> AB\"'");
  EXPECT_EQ(item->childText("note"), "<raw> & text");
  ASSERT_NE(root->child("empty"), nullptr);
  EXPECT_EQ(root->childText("missing"), "");
  EXPECT_EQ(root->findDescendant("key")->text, "a&b");
}

TEST(AwsXmlReader, DropsNamespacePrefixesAndReadsUtf8References) {
  auto root = parseXml("<ec2:Response xmlns:ec2='x'><ec2:v a=\"1\" b='2'>&#x1F600;</ec2:v></ec2:Response>");
  ASSERT_TRUE(root.ok()) << root.error().toString();
  EXPECT_EQ(root->name, "Response");
  EXPECT_EQ(root->childText("v"), "\xF0\x9F\x98\x80");
}

void expectRefused(const std::string& doc, const std::string& why_part) {
  auto root = parseXml(doc);
  ASSERT_FALSE(root.ok()) << "accepted: " << doc;
  EXPECT_EQ(root.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(root.error().message().find(why_part), std::string::npos) << root.error().message();
  EXPECT_NE(root.error().message().find("xml:"), std::string::npos);
}

TEST(AwsXmlReader, RefusesMalformedDocumentsWithAClearError) {
  expectRefused("", "no root element");
  expectRefused("   ", "no root element");
  expectRefused("just text", "text outside the root element");
  expectRefused("<a>", "ends inside <a>");
  expectRefused("<a></b>", "</b> closes <a>");
  expectRefused("</a>", "closes nothing");
  expectRefused("<a></a><b/>", "content after the root element");
  expectRefused("<a></a>trailing", "text outside the root element");
  expectRefused("<a b=1></a>", "must be quoted");
  expectRefused("<a b></a>", "has no value");
  expectRefused("<a b='x></a>", "not closed");
  expectRefused("<a b='<'></a>", "'<' inside an attribute value");
  expectRefused("<a>&unknown;</a>", "unknown or invalid entity");
  expectRefused("<a>&amp</a>", "not closed");
  expectRefused("<a>&#0;</a>", "unknown or invalid entity");
  expectRefused("<a>&#xD800;</a>", "unknown or invalid entity");
  expectRefused("<a>&#x110000;</a>", "unknown or invalid entity");
  expectRefused("<a>\x01</a>", "control character");
  expectRefused("<a><!-- open", "comment is not closed");
  expectRefused("<a><![CDATA[ open", "CDATA section is not closed");
  expectRefused("<?xml version='1.0'", "processing instruction is not closed");
  expectRefused("<1a/>", "a name is expected");
  expectRefused("<", "a name is expected");
  expectRefused("<a", "start tag is not closed");
}

TEST(AwsXmlReader, RefusesDtdsSoNoEntityCanExpand) {
  expectRefused("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;'>]><a>&lol2;</a>",
                "DTDs and declarations are not accepted");
  expectRefused("<!DOCTYPE a SYSTEM 'file:///etc/passwd'><a>&xxe;</a>", "DTDs");
}

TEST(AwsXmlReader, BoundsDepthElementsAndSize) {
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "<a>";
  expectRefused(deep, "nest deeper than 64");

  std::string many = "<r>";
  for (int i = 0; i < 20; ++i) many += "<i/>";
  many += "</r>";
  XmlLimits limits;
  limits.max_elements = 10;
  auto r = parseXml(many, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("more than 10 elements"), std::string::npos);

  limits = XmlLimits{};
  limits.max_bytes = 8;
  r = parseXml("<a>123456789</a>", limits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("more than the limit"), std::string::npos);
}

// Random bytes, and random cuts and flips of a valid answer: the reader answers every one.
TEST(AwsXmlReader, SurvivesRandomAndMutatedInput) {
  const std::string valid = "<r xmlns='x'><a k=\"v\">t&amp;<![CDATA[c]]></a><!--c--><b><c>1</c></b></r>";
  const std::string alphabet = "<>/&;!?[]-'\"=abc #x1\n";
  for (int i = 0; i < 3000; ++i) {
    std::string doc;
    const auto n = secureRandomU64() % 64;
    for (std::uint64_t j = 0; j < n; ++j) doc.push_back(alphabet[secureRandomU64() % alphabet.size()]);
    (void)parseXml(doc);
    std::string mutated = valid;
    mutated[secureRandomU64() % mutated.size()] = alphabet[secureRandomU64() % alphabet.size()];
    (void)parseXml(mutated);
    (void)parseXml(valid.substr(0, secureRandomU64() % valid.size()));
  }
  EXPECT_TRUE(parseXml(valid).ok());
}

}  // namespace
}  // namespace kasm::aws::detail
