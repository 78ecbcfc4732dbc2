#include <random>
#include <string>

#include <catch2/catch.hpp>

#include <mpctl/common/base64.hpp>

using mpctl::common::base64_decode;
using mpctl::common::base64_encode;

TEST_CASE("base64 encodes the RFC 4648 test vectors", "[unit][base64]") {
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK(base64_encode("foo") == "Zm9v");
    CHECK(base64_encode("foob") == "Zm9vYg==");
    CHECK(base64_encode("fooba") == "Zm9vYmE=");
    CHECK(base64_encode("foobar") == "Zm9vYmFy");
}

TEST_CASE("base64 decodes the RFC 4648 test vectors", "[unit][base64]") {
    CHECK(base64_decode("") == std::string());
    CHECK(base64_decode("Zg==") == std::string("f"));
    CHECK(base64_decode("Zm8=") == std::string("fo"));
    CHECK(base64_decode("Zm9v") == std::string("foo"));
    CHECK(base64_decode("Zm9vYg==") == std::string("foob"));
    CHECK(base64_decode("Zm9vYmE=") == std::string("fooba"));
    CHECK(base64_decode("Zm9vYmFy") == std::string("foobar"));
}

TEST_CASE("base64 uses the standard alphabet with + and /", "[unit][base64]") {
    CHECK(base64_encode(std::string("\xfb\xff\xbf", 3)) == "+/+/");
    CHECK(base64_decode("+/+/") == std::string("\xfb\xff\xbf", 3));
    CHECK(base64_encode(std::string("\0\0\0", 3)) == "AAAA");
    CHECK(base64_decode("AAAA") == std::string("\0\0\0", 3));
}

TEST_CASE("random bytes of every length from 0 to 300 survive encode and decode", "[unit][base64]") {
    std::mt19937 rng(12345);
    std::uniform_int_distribution<int> byte(0, 255);
    for (size_t len = 0; len <= 300; ++len) {
        for (int round = 0; round < 4; ++round) {
            std::string data(len, '\0');
            for (auto& c : data) {
                c = static_cast<char>(byte(rng));
            }
            std::string text = base64_encode(data);
            INFO("length " << len);
            CHECK(text.size() == (len + 2) / 3 * 4);
            CHECK(
                text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
                std::string::npos);
            auto back = base64_decode(text);
            REQUIRE(back);
            CHECK(*back == data);
        }
    }
}

TEST_CASE("base64 refuses lengths that are not a multiple of four", "[unit][base64]") {
    for (const char* bad : {"Z", "Zg", "Zg=", "Zm9vY", "Zm9vYg=", "Zm9vYg==="}) {
        INFO(bad);
        CHECK_FALSE(base64_decode(bad));
    }
}

TEST_CASE("base64 refuses characters outside the alphabet, including whitespace", "[unit][base64]") {
    for (const char* bad : {"Zm9v!A==", "Zm-_", "Zm9 ", " Zm9", "Zm\n9", "Zm9\t", "Zm9v\r\nYmFy"}) {
        INFO(bad);
        CHECK_FALSE(base64_decode(bad));
    }
    CHECK_FALSE(base64_decode(std::string("Zm\0v", 4)));
    CHECK_FALSE(base64_decode("Zm\xc3\xa9"));
}

TEST_CASE("base64 refuses padding anywhere but the end of the last quantum", "[unit][base64]") {
    for (const char* bad : {"====", "Z===", "=Zm9", "Zm=v", "Zg==Zm9v", "Zm8=Zm9v", "Z=g=", "AA=A"}) {
        INFO(bad);
        CHECK_FALSE(base64_decode(bad));
    }
}
