# Reference adapter: Perl's MIME-tools (MIME::Parser), as mail-AV setups use it: nested
# messages and uuencoded blocks in text extracted. Reads message paths on stdin; prints one
# line per message: the path, a tab, then the base64 of every body it decoded, space-separated.
use strict; use warnings;
use MIME::Parser; use MIME::Base64 qw(encode_base64);
$| = 1;
while (my $path = <STDIN>) {
  chomp $path; next unless length $path;
  my $parser = MIME::Parser->new;
  $parser->output_to_core(1);
  $parser->extract_uuencode(1);
  $parser->extract_nested_messages(1);
  $parser->decode_bodies(1);
  my @out;
  my $ent = eval { open(my $fh, '<:raw', $path) or die; my $e = $parser->parse($fh); close $fh; $e };
  if ($ent) {
    for my $part ($ent->parts_DFS) {
      my $bh = $part->bodyhandle or next;
      my $data = eval { $bh->as_string };
      next unless defined $data && length $data;
      push @out, encode_base64($data, '');
    }
  }
  print $path, "\t", join(' ', @out), "\n";
}
